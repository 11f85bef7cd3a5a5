"""Load test: N concurrent clients against POST /edit for D seconds; errors, latency, RSS.

    python bench/load.py [--duration 60] [--concurrency 64] [--url URL | --generator G
                         --extractor E|none --bundle B|none --device cpu] [--json out.json]

Without ``--url`` it starts the real server (``tlgan serve`` in a subprocess on a free
loopback port, ``TLGAN_*`` variables honoured) and stops it with SIGTERM at the end; if the
default extractor or bundle cannot be loaded (and neither was named), it says so and serves
without them. Each client loops: a random standard-normal latent, one to three random moves
along the axes listed by ``GET /axes`` (sometimes with a locked reference axis), POST /edit.

It prints the request count, errors by status (or exception type), p50/p90/p99/max latency
and throughput, and the server's resident memory (RSS, sampled every second from
/proc/PID/status, or psutil, when the PID is known: the server it started or ``--pid``):
at the start of the load, at the end, the maximum, and the least-squares slope over the
second half of the run in MB/min (a growth trend). With ``--json`` the same figures (and
the RSS series, seconds and MB) are written as JSON.

Exit status 1 when errors exceed ``--max-errors`` (default 0), when RSS grew by more than
``--max-rss-growth-mb`` (if given), or when the server it started did not exit with 0 on
SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tlgan.server_process import ServerNotReady, ServerProcess


def rss_mb(pid: int) -> float | None:
    """Resident set size of process ``pid`` in MB (None if it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return None


def started(options: list[str]) -> ServerProcess | str:
    """``tlgan serve *options`` once ready, or the server's last words if it exited."""
    server = ServerProcess(options)
    try:
        server.wait_ready(300.0)
    except ServerNotReady as exc:
        server.close()
        if not exc.exited:
            raise SystemExit("load: the server did not become ready in time") from None
        return exc.last_words
    return server


def start_server(args: argparse.Namespace) -> tuple[ServerProcess, str]:
    """Start the server on the requested models, falling back to no extractor / bundle when
    the defaults cannot be loaded and none was named. Returns (server, note)."""
    base = ["--log-level", "warning"]
    for opt in ("generator", "extractor", "bundle", "device"):
        value = getattr(args, opt)
        if value is not None:
            base += [f"--{opt}", value]
    if args.torch_threads is not None:
        base += ["--torch-threads", str(args.torch_threads)]
    server = started(base)
    if isinstance(server, ServerProcess):
        return server, ""
    if args.extractor is not None or args.bundle is not None:
        raise SystemExit(f"load: the server did not start: {server}")
    note = f"the default models did not load ({server}); serving without extractor and bundle"
    server = started([*base, "--extractor", "none", "--bundle", "none"])
    if not isinstance(server, ServerProcess):
        raise SystemExit(f"load: the server did not start: {server}")
    return server, note


class Load:
    """The workload: random latents and moves along the service's axes."""

    def __init__(self, latent_size: int, axes: list[dict[str, Any]], with_features: bool,
                 seed: int) -> None:
        self.latent_size = latent_size
        self.names = [str(a["name"]) for a in axes]
        self.references = [str(a["name"]) for a in axes if a.get("reference")]
        self.with_features = with_features
        self.rng = np.random.default_rng(seed)
        self.pick = random.Random(seed)

    def body(self) -> dict[str, Any]:
        """One /edit request body."""
        z = self.rng.standard_normal(self.latent_size).astype(np.float32)
        moves: dict[str, float] = {}
        if self.names:
            for name in self.pick.sample(self.names, k=min(len(self.names),
                                                           self.pick.randint(1, 3))):
                moves[name] = round(self.pick.uniform(-3.0, 3.0), 3)
        locked = ([self.pick.choice(self.references)]
                  if self.references and self.pick.random() < 0.3 else [])
        return {"latent": [float(x) for x in z], "moves": moves, "locked": locked,
                "with_features": self.with_features}


async def run_load(url: str, headers: dict[str, str], load: Load, duration: float,
                   concurrency: int, pid: int | None, timeout: float) -> dict[str, Any]:
    """Drive the load; return the raw figures."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    samples: list[tuple[float, float]] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout,
                                 limits=limits) as client:
        # Warm-up: one request per connection (not counted).
        warm = await asyncio.gather(*(client.post("/edit", json=load.body())
                                      for _ in range(concurrency)), return_exceptions=True)
        bad = [w for w in warm if isinstance(w, BaseException) or w.status_code != 200]
        if bad:
            first = bad[0]
            what = (repr(first) if isinstance(first, BaseException)
                    else f"{first.status_code} {first.text[:300]}")
            raise SystemExit(f"load: warm-up request failed: {what}")
        t0 = time.monotonic()
        deadline = t0 + duration
        stop = asyncio.Event()

        async def sampler() -> None:
            while True:
                if pid is not None:
                    value = rss_mb(pid)
                    if value is not None:
                        samples.append((time.monotonic() - t0, value))
                if stop.is_set():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

        async def worker() -> None:
            while time.monotonic() < deadline:
                body = load.body()
                start = time.perf_counter()
                try:
                    r = await client.post("/edit", json=body)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                elapsed = time.perf_counter() - start
                if r.status_code == 200:
                    latencies.append(elapsed)
                else:
                    errors[str(r.status_code)] += 1

        sampling = asyncio.create_task(sampler())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.monotonic() - t0
        stop.set()
        await sampling
        metrics = ""
        try:
            m = await client.get("/metrics")
            if m.status_code == 200:
                metrics = m.text
        except httpx.HTTPError:
            pass
    return {"latencies": latencies, "errors": errors, "samples": samples, "wall": wall,
            "metrics": metrics}


def batch_summary(metrics_text: str) -> dict[str, float] | None:
    """Batches, mean batch size and queue rejections from the server's /metrics text."""
    if not metrics_text:
        return None
    values: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith(("tlgan_batch_size_count ", "tlgan_batch_size_sum ",
                            "tlgan_queue_rejected_total ")):
            name, _, value = line.partition(" ")
            values[name] = float(value)
    count = values.get("tlgan_batch_size_count", 0.0)
    return {"batches": count,
            "mean_batch_size": values.get("tlgan_batch_size_sum", 0.0) / count if count else 0.0,
            "queue_rejected": values.get("tlgan_queue_rejected_total", 0.0)}


def summarize(raw: dict[str, Any], duration: float) -> dict[str, Any]:
    """Percentiles, throughput and the RSS trend from the raw figures."""
    lat = np.asarray(raw["latencies"], dtype=np.float64) * 1000.0
    errors: Counter[str] = raw["errors"]
    n_err = int(sum(errors.values()))
    out: dict[str, Any] = {
        "requests": int(lat.size) + n_err, "ok": int(lat.size), "errors": n_err,
        "errors_by_status": dict(sorted(errors.items())), "seconds": round(raw["wall"], 2),
        "throughput_rps": round((lat.size + n_err) / raw["wall"], 1) if raw["wall"] else 0.0,
    }
    if lat.size:
        out["latency_ms"] = {k: round(float(np.percentile(lat, q)), 2)
                             for k, q in (("p50", 50), ("p90", 90), ("p99", 99))}
        out["latency_ms"]["max"] = round(float(lat.max()), 2)
        out["latency_ms"]["mean"] = round(float(lat.mean()), 2)
    samples = raw["samples"]
    if samples:
        t = np.array([s[0] for s in samples])
        mb = np.array([s[1] for s in samples])
        half = t >= duration / 2
        slope = None
        if int(half.sum()) >= 3 and np.ptp(t[half]) > 0:
            slope = float(np.polyfit(t[half] / 60.0, mb[half], 1)[0])
        out["rss_mb"] = {"start": round(float(mb[0]), 1), "end": round(float(mb[-1]), 1),
                         "max": round(float(mb.max()), 1), "samples": int(mb.size),
                         "slope_mb_per_min_second_half": (None if slope is None
                                                          else round(slope, 2)),
                         "series": [[round(float(a), 1), round(float(b), 1)]
                                    for a, b in zip(t, mb, strict=True)]}
    batches = batch_summary(raw["metrics"])
    if batches is not None:
        out["server_batches"] = batches
    return out


def print_summary(out: dict[str, Any]) -> None:
    """Human-readable report."""
    print(f"requests {out['requests']} in {out['seconds']} s at concurrency "
          f"{out['concurrency']}: {out['throughput_rps']} req/s; errors {out['errors']}"
          + (f" {out['errors_by_status']}" if out["errors"] else ""))
    if "latency_ms" in out:
        lat = out["latency_ms"]
        print(f"latency ms: p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  "
              f"max {lat['max']}  mean {lat['mean']}")
    if "rss_mb" in out:
        r = out["rss_mb"]
        print(f"server RSS MB: start {r['start']}  end {r['end']}  max {r['max']}  "
              f"slope over the second half {r['slope_mb_per_min_second_half']} MB/min "
              f"({r['samples']} samples)")
    else:
        print("server RSS: not sampled (no server PID: pass --pid with --url)")
    if "server_batches" in out:
        b = out["server_batches"]
        print(f"server batches: {b['batches']:.0f}, mean size {b['mean_batch_size']:.1f}, "
              f"queue rejections {b['queue_rejected']:.0f}")
    if "server_exit_code" in out:
        print(f"server exit code after SIGTERM: {out['server_exit_code']}")


def main(argv: list[str] | None = None) -> int:
    """Run the load test; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    ap.add_argument("--concurrency", type=int, default=64, help="concurrent clients (64)")
    ap.add_argument("--url", default=None, help="target a running server instead")
    ap.add_argument("--pid", type=int, default=None, help="with --url: the server's PID (RSS)")
    ap.add_argument("--api-key", default=os.environ.get("TLGAN_API_KEY"),
                    help="X-API-Key to send (default: $TLGAN_API_KEY)")
    ap.add_argument("--generator", default=None)
    ap.add_argument("--extractor", default=None, help="name, folder or 'none'")
    ap.add_argument("--bundle", default=None, help="folder or 'none'")
    ap.add_argument("--device", default=None)
    ap.add_argument("--torch-threads", type=int, default=None)
    ap.add_argument("--features", choices=["auto", "on", "off"], default="auto",
                    help="with_features in the requests (auto: on when the server labels)")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-errors", type=int, default=0, help="error budget (0)")
    ap.add_argument("--max-rss-growth-mb", type=float, default=None,
                    help="fail if RSS end - start exceeds this")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1:
        ap.error("--duration must be > 0 and --concurrency >= 1")

    server: ServerProcess | None = None
    note = ""
    if args.url is None:
        server, note = start_server(args)
        url, pid = server.url, server.pid
    else:
        url, pid = args.url.rstrip("/"), args.pid
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    failures: list[str] = []
    try:
        info = httpx.get(f"{url}/axes", headers=headers, timeout=30).raise_for_status().json()
        with_features = {"on": True, "off": False}.get(args.features,
                                                       bool(info.get("attributes")))
        load = Load(int(info["latent_size"]), list(info.get("axes") or []), with_features,
                    args.seed)
        print(f"target {url}: latent size {load.latent_size}, {len(load.names)} axes, "
              f"with_features={with_features}; cpu cores {os.cpu_count()}, load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if note:
            print(f"note: {note}")
        raw = asyncio.run(run_load(url, headers, load, args.duration, args.concurrency, pid,
                                   args.timeout))
    finally:
        exit_code = server.stop() if server is not None else None
    out = summarize(raw, args.duration)
    out.update(concurrency=args.concurrency, duration=args.duration, url=url,
               with_features=with_features, axes=len(load.names), note=note or None)
    if exit_code is not None:
        out["server_exit_code"] = exit_code
        if exit_code != 0:
            failures.append(f"the server exited with {exit_code} after SIGTERM")
    print_summary(out)
    if out["errors"] > args.max_errors:
        failures.append(f"{out['errors']} errors (budget {args.max_errors})")
    rss = out.get("rss_mb")
    if (args.max_rss_growth_mb is not None and rss is not None
            and rss["end"] - rss["start"] > args.max_rss_growth_mb):
        failures.append(f"RSS grew by {rss['end'] - rss['start']:.1f} MB "
                        f"(budget {args.max_rss_growth_mb} MB)")
    out["failures"] = failures
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
