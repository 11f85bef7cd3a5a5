"""Hostile traffic against a real server: how /healthz, admission, file descriptors and memory
hold (the probe of issue #24, re-runnable).

    python bench/abuse.py [--code DIR] [--short] [--only edit,heads,storm,slow,cold,rss]

Starts ``tlgan serve`` (the default models, one torch thread, no access log) from ``--code``
(a checkout of the project, default this one: run it once with ``--code /path/to/main`` and
once without to compare two commits on the same machine), runs each load and prints its
figures. While every load runs, a thread polls ``GET /healthz`` every 50 ms on its own
connection; its worst and median latency are the figures that matter for a liveness probe.

* ``edit``: N concurrent ``POST /edit`` (one connection each).
* ``heads``: K concurrent ``POST /edit`` each bringing 32 custom axes with heads (the heads'
  slopes are fitted on the 5,000 shipped samples).
* ``storm``: N clients send ``POST /edit`` and hang up at once (bench/storm.py's storm); also
  prints the faces rendered for them.
* ``slow``: S connections that stay silent, trickle their headers or trickle their body, a
  byte every second, for ``--hold`` seconds; prints the server's open file descriptors before,
  at the peak and after, and how many connections the server closed.
* ``cold``: a freshly started server gets a burst of B ``POST /generate`` count 64; prints
  how many were admitted (not refused at once) and how many served (200), refused (503 full
  queue), or admitted but given up after the queue wait (503), and the largest Retry-After.
* ``rss``: peak resident memory added by one request of each kind (the kernel's peak RSS is
  reset before each: /proc/PID/clear_refs), on an idle server.

``--short`` shrinks every load (and the server's keep-alive and slow-client timeouts to 5 s)
so that the whole run takes a few minutes on a loaded 2-core machine; figures from a shared
machine are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
from bench.common import bench_server  # noqa: E402
from tlgan.server_process import ServerProcess, scrubbed_env  # noqa: E402


def proc_status(pid: int, key: str) -> float:
    """A ``kB`` field of /proc/PID/status in MB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0
    raise SystemExit(f"abuse: no {key} in /proc/{pid}/status")


def open_fds(pid: int) -> int:
    """Open file descriptors of process ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


#: the server from ``--code``'s own sources, whatever the checkout's entry points
LAUNCHER = (sys.executable, "-c", "from api.cli import main; main()")


def abuse_server(code: Path, env: dict[str, str]) -> AbstractContextManager[ServerProcess]:
    """``tlgan serve`` from checkout ``code`` (one torch thread, no access log, warnings
    only, no TLGAN_* variable of this shell; ``env`` on top) until ready; stopped on exit."""
    full = scrubbed_env(PYTHONPATH=str(code), TLGAN_TORCH_THREADS="1",
                        TLGAN_ACCESS_LOG="false", TLGAN_LOG_LEVEL="warning", **env)
    return bench_server("abuse", env=full, cwd=code, launcher=LAUNCHER, ready_timeout=600)


_PROBE = """
import json, sys, time, http.client
host, port, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
times, failures = [], 0
import os
while not os.path.exists(stop):
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
    except OSError:
        ok = False
    times.append(time.perf_counter() - t0)
    failures += not ok
    time.sleep(0.05)
print(json.dumps({"times": times, "failures": failures}))
"""


class HealthProbe:
    """Polls GET /healthz every 50 ms, each on a new connection, from a process of its own
    (so that the load's own client never delays it) while a load runs."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self._stop = Path(tempfile.mkdtemp()) / "stop"
        self._proc = subprocess.Popen([sys.executable, "-c", _PROBE, host, port,
                                       str(self._stop)], stdout=subprocess.PIPE, text=True)
        self.times: list[float] = []
        self.failures = 0

    def __enter__(self) -> HealthProbe:
        time.sleep(0.3)  # the probe is up
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.touch()
        out, _ = self._proc.communicate(timeout=180)
        data = json.loads(out)
        self.times, self.failures = data["times"], data["failures"]

    def summary(self) -> str:
        if not self.times:
            return "/healthz: no probe answered"
        return (f"/healthz worst {max(self.times) * 1000:.0f} ms, median "
                f"{statistics.median(self.times) * 1000:.1f} ms over {len(self.times)} probes"
                f"{f', {self.failures} failed' if self.failures else ''}")


def _latent(rng: np.random.Generator, size: int) -> list[float]:
    return [float(x) for x in rng.standard_normal(size)]


async def _many(url: str, method: str, path: str, bodies: list[Any],
                timeout: float = 300) -> list[httpx.Response | Exception]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as http:
        async def one(body: Any) -> httpx.Response | Exception:
            try:
                return await http.request(method, path, json=body)
            except httpx.HTTPError as exc:
                return exc
        return list(await asyncio.gather(*(one(b) for b in bodies)))


def _tally(results: list[httpx.Response | Exception]) -> str:
    c = Counter(r.status_code if isinstance(r, httpx.Response) else type(r).__name__
                for r in results)
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items(), key=str))


def latent_size(url: str) -> int:
    r = httpx.post(f"{url}/generate", json={"seed": 0, "with_features": False}, timeout=120)
    return len(r.json()["faces"][0]["latent"])


def custom_heads(url: str, size: int, n: int = 32) -> dict[str, Any]:
    """``n`` custom axes with heads (one head taught from 12 random examples, reused)."""
    rng = np.random.default_rng(1)
    examples = [{"latent": _latent(rng, size), "label": i % 2} for i in range(12)]
    r = httpx.post(f"{url}/axes/fit", json={"name": "abuse", "examples": examples},
                   timeout=600)
    r.raise_for_status()
    head = r.json()["head"]
    return {f"mine{i}": {"direction": _latent(rng, size), "head": head} for i in range(n)}


def run_edit(url: str, n: int) -> None:
    size = latent_size(url)
    rng = np.random.default_rng(0)
    bodies = [{"latent": _latent(rng, size), "moves": {"Smiling": 1.0}} for _ in range(n)]
    with HealthProbe(url) as probe:
        t0 = time.perf_counter()
        results = asyncio.run(_many(url, "POST", "/edit", bodies))
        took = time.perf_counter() - t0
    print(f"edit: {n} concurrent /edit in {took:.1f} s ({_tally(results)}); {probe.summary()}")


def run_heads(url: str, k: int) -> None:
    size = latent_size(url)
    axes = custom_heads(url, size)
    rng = np.random.default_rng(2)
    bodies = [{"latent": _latent(rng, size), "moves": {"mine0": 0.5}, "custom_axes": axes}
              for _ in range(k)]
    with HealthProbe(url) as probe:
        t0 = time.perf_counter()
        results = asyncio.run(_many(url, "POST", "/edit", bodies))
        took = time.perf_counter() - t0
    print(f"heads: {k} concurrent /edit with 32 custom heads in {took:.1f} s "
          f"({_tally(results)}); {probe.summary()}")


def run_storm(url: str, n: int) -> None:
    from bench.storm import hang_up, rendered

    size = latent_size(url)
    rng = np.random.default_rng(3)
    bodies = [{"latent": _latent(rng, size), "moves": {"Smiling": 1.0},
               "with_features": False} for _ in range(n)]
    before = rendered(url)

    async def storm() -> None:
        await asyncio.gather(*(hang_up(url, b) for b in bodies), return_exceptions=True)

    with HealthProbe(url) as probe:
        asyncio.run(storm())
        time.sleep(3)
    print(f"storm: {n} clients hung up; {rendered(url) - before:.0f} faces rendered for them; "
          f"{probe.summary()}")


async def _slow_clients(port: int, n: int, hold: float) -> tuple[int, int]:
    """n connections (silent / trickled headers / trickled body) for ``hold`` seconds;
    returns (opened, closed by the server)."""
    closed = 0

    async def one(i: int) -> None:
        nonlocal closed
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        kind = i % 3
        if kind == 1:
            writer.write(b"GET /healthz HTTP/1.1\r\n")
        elif kind == 2:
            writer.write(b"POST /edit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                         b"\r\nContent-Length: 100000\r\n\r\n{")
        deadline = time.monotonic() + hold
        try:
            while time.monotonic() < deadline:
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                    if not data:  # the server closed it
                        closed += 1
                        return
                except TimeoutError:
                    pass
                if kind:
                    writer.write(b"X" if kind == 1 else b" ")
                    await writer.drain()
        except OSError:
            closed += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(i) for i in range(n)))
    return n, closed


def run_slow(server: ServerProcess, n: int, hold: float) -> None:
    before = open_fds(server.pid)
    peak = before
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, open_fds(server.pid))
            stop.wait(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with HealthProbe(server.url) as probe:
        opened, closed = asyncio.run(_slow_clients(server.port, n, hold))
    stop.set()
    watcher.join()
    time.sleep(1)
    print(f"slow: {opened} slow connections held {hold:.0f} s: the server closed {closed}; "
          f"its file descriptors {before} before, {peak} at the peak, "
          f"{open_fds(server.pid)} after; {probe.summary()}")


def run_cold(server: ServerProcess, n: int) -> None:
    bodies = [{"seed": i, "count": 64, "with_features": False} for i in range(n)]
    with HealthProbe(server.url) as probe:
        t0 = time.perf_counter()
        results = asyncio.run(_many(server.url, "POST", "/generate", bodies))
        took = time.perf_counter() - t0
    served = refused = expired = 0
    retry: list[int] = []
    for r in results:
        if not isinstance(r, httpx.Response):
            continue
        served += r.status_code == 200
        if r.status_code == 503:
            text = r.json().get("detail", "")
            expired += "waited" in text
            refused += "waited" not in text
            retry.append(int(r.headers.get("retry-after", "0")))
    print(f"cold: a burst of {n} /generate count 64 on a fresh server: admitted "
          f"{n - refused}, served {served}, refused at once {refused}, admitted but given up "
          f"after the queue wait {expired}; Retry-After max {max(retry, default=0)} s; "
          f"{took:.0f} s in all ({_tally(results)}); {probe.summary()}")


def run_rss(server: ServerProcess, fit_examples: int) -> None:
    url, pid = server.url, server.pid
    size = latent_size(url)
    rng = np.random.default_rng(4)
    axes = custom_heads(url, size)
    examples = [{"latent": _latent(rng, size), "label": i % 2} for i in range(fit_examples)]
    kinds: list[tuple[str, str, str, Any]] = [
        ("edit", "POST", "/edit", {"latent": _latent(rng, size), "moves": {"Smiling": 1}}),
        ("generate count 64", "POST", "/generate", {"seed": 1, "count": 64}),
        ("generate count 16 conditioned", "POST", "/generate",
         {"seed": 1, "count": 16, "features": {"Smiling": 0.9, "Male": 0.1}}),
        ("edit with 32 custom heads", "POST", "/edit",
         {"latent": _latent(rng, size), "moves": {"mine0": 0.5}, "custom_axes": axes}),
        (f"axes/fit {fit_examples} examples", "POST", "/axes/fit",
         {"name": "abuse_rss", "examples": examples}),
    ]
    print("rss: peak resident memory added by one request (MB), idle server:")
    with httpx.Client(base_url=url, timeout=900) as http:
        for name, method, path, body in kinds:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM)
            base = proc_status(pid, "VmRSS")
            t0 = time.perf_counter()
            r = http.request(method, path, json=body)
            took = time.perf_counter() - t0
            peak = proc_status(pid, "VmHWM")
            print(f"  {name:32s} {r.status_code}  +{peak - base:7.0f} MB (peak {peak:.0f} MB) "
                  f" {took:.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=HERE,
                    help="the checkout whose server to run (default: this one)")
    ap.add_argument("--only", default="edit,heads,storm,slow,cold,rss",
                    help="comma-separated loads to run")
    ap.add_argument("--short", action="store_true", help="small loads, 5 s timeouts")
    ap.add_argument("--hold", type=float, default=None,
                    help="seconds the slow clients hold on (default 90, short 20)")
    args = ap.parse_args(argv)
    short = args.short
    only = set(args.only.split(","))
    env = {"TLGAN_KEEP_ALIVE": "5", "TLGAN_HEADER_TIMEOUT": "5",
           "TLGAN_BODY_TIMEOUT": "5"} if short else {}
    print(f"code: {args.code}; {'short loads' if short else 'full loads'}; "
          f"{os.cpu_count()} CPU cores")
    if only - {"cold"}:
        with abuse_server(args.code, env) as server:
            if "edit" in only:
                run_edit(server.url, 200 if short else 600)
            if "heads" in only:
                run_heads(server.url, 4 if short else 10)
            if "storm" in only:
                run_storm(server.url, 200 if short else 1000)
            if "slow" in only:
                run_slow(server, 90 if short else 600,
                         args.hold or (20.0 if short else 90.0))
            if "rss" in only:
                run_rss(server, 500)
    if "cold" in only:
        with abuse_server(args.code, env) as server:
            run_cold(server, 150 if short else 600)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
