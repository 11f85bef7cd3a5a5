"""Fairness under load: interactive edits beside heavy jobs, and a disconnect storm.

    python bench/fairness.py [--runs 3] [--heavy 4] [--storm 1000] [--json out.json]

Starts the real server (``tlgan serve`` on the embedded defaults, as ``bench/load.py``
does) and measures, over HTTP:

1. **Edits beside heavy jobs.** One client sends single-face ``/edit`` requests (no
   features, the web page's drag) one after another: first on an idle server (the
   baseline, measured in the same run), then while ``--heavy`` clients loop
   ``/generate {"count": 64, "features": {Smiling, Eyeglasses, Male}}`` (each holds the
   model for seconds). Prints p50/p99 of both and the ratio of the p99s (goal: under 5).
   Also counts the heavy requests answered 503 (admission: the bulk lane's backlog is
   bounded in seconds) and the largest Retry-After they carried.
2. **A disconnect storm.** While a heavy client keeps the bulk lane busy and ``--live``
   clients keep sending edits, ``--storm`` clients each send ``/edit`` at once and give up
   after ``--patience`` seconds (0: they hang up right after sending). From ``/stats`` before and
   after: faces the interactive lane rendered, the jobs the server cancelled, the share of
   abandoned requests rendered anyway (goal: under 5%), and how the clients that stayed
   fared.

Each figure is the median over ``--runs`` repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import bench_server
from bench.storm import hang_up

HEAVY = {"seed": 1, "count": 64, "with_features": False,
         "features": {"Smiling": 0.9, "Eyeglasses": 0.9, "Male": 0.1}}


def edit_body(rng: np.random.Generator, size: int) -> dict[str, Any]:
    """A single-face edit without features (one axis move)."""
    return {"latent": [float(x) for x in rng.standard_normal(size).astype(np.float32)],
            "moves": {"Smiling": float(rng.uniform(-2, 2))}, "with_features": False}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def edits(client: httpx.AsyncClient, rng: np.random.Generator, size: int,
                seconds: float) -> list[float]:
    """Sequential /edit requests for ``seconds``; their latencies (ms)."""
    out: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        body = edit_body(rng, size)
        t0 = time.perf_counter()
        r = await client.post("/edit", json=body)
        out.append((time.perf_counter() - t0) * 1000.0)
        if r.status_code != 200:
            raise SystemExit(f"fairness: /edit answered {r.status_code}: {r.text[:200]}")
    return out


async def heavy_loop(url: str, stop: asyncio.Event, tally: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        while not stop.is_set():
            r = await client.post("/generate", json=HEAVY)
            tally[r.status_code] = tally.get(r.status_code, 0) + 1
            if r.status_code == 503:  # a well-behaved client: back off as told
                wait = int(r.headers.get("retry-after", "1"))
                tally["retry_after_max"] = max(tally.get("retry_after_max", 0), wait)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)


async def beside_heavy(url: str, size: int, heavy: int, seconds: float, seed: int
                       ) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        await edits(client, rng, size, 1.0)  # warm-up
        idle = await edits(client, rng, size, seconds)
        stop = asyncio.Event()
        tally: dict[str, Any] = {}
        loops = [asyncio.create_task(heavy_loop(url, stop, tally)) for _ in range(heavy)]
        await asyncio.sleep(2.0)  # the heavy jobs are running
        busy = await edits(client, rng, size, seconds)
        stop.set()
        await asyncio.gather(*loops)
    return {"idle_p50_ms": pct(idle, 50), "idle_p99_ms": pct(idle, 99),
            "busy_p50_ms": pct(busy, 50), "busy_p99_ms": pct(busy, 99),
            "p99_ratio": pct(busy, 99) / pct(idle, 99), "edits_busy": len(busy),
            "heavy_200": tally.get(200, 0), "heavy_503": tally.get(503, 0),
            "heavy_retry_after_max": tally.get("retry_after_max", 0)}


async def live_loop(url: str, rng: np.random.Generator, size: int, stop: asyncio.Event,
                    tally: dict[str, int]) -> None:
    """A client that stays: sequential /edit requests until ``stop``."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        while not stop.is_set():
            r = await client.post("/edit", json=edit_body(rng, size))
            tally[str(r.status_code)] = tally.get(str(r.status_code), 0) + 1


async def storm(url: str, size: int, n: int, live: int, patience: float, seed: int
                ) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    bodies = [edit_body(rng, size) for _ in range(n)]
    async with httpx.AsyncClient(base_url=url, timeout=120) as control:
        before = (await control.get("/stats")).json()["batcher"]
        stop = asyncio.Event()
        heavy: dict[str, Any] = {}
        stayed: dict[str, int] = {}
        busy = asyncio.create_task(heavy_loop(url, stop, heavy))
        staying = [asyncio.create_task(live_loop(url, rng, size, stop, stayed))
                   for _ in range(live)]
        await asyncio.sleep(1.0)
        if patience <= 0:
            await asyncio.gather(*(hang_up(url, b) for b in bodies))
            results = [False] * n  # closed right after sending: never answered
        else:
            limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
            # each request is sent for sure (connect/write/pool: 30 s), then its client waits
            # ``patience`` for the answer and hangs up
            timeout = httpx.Timeout(30.0, read=patience)
            async with httpx.AsyncClient(base_url=url, timeout=timeout,
                                         limits=limits) as crowd:
                async def one(body: dict[str, Any]) -> bool:
                    try:
                        r = await crowd.post("/edit", json=body)
                        return r.status_code == 200
                    except httpx.ReadTimeout:
                        return False

                results = await asyncio.gather(*(one(b) for b in bodies))
        await asyncio.sleep(2.0)  # the staying clients go on after the storm
        stop.set()
        await asyncio.gather(busy, *staying)
        await asyncio.sleep(1.0)  # let the server finish what it had started
        after = (await control.get("/stats")).json()["batcher"]
    answered = sum(results)
    abandoned = n - answered
    faces = (after["lanes"]["interactive"]["rendered"]
             - before["lanes"]["interactive"]["rendered"])
    wasted = max(0, faces - answered - stayed.get("200", 0))
    return {"sent": n, "answered": answered, "abandoned": abandoned,
            "cancelled": after["cancelled"] - before["cancelled"],
            "rendered_for_abandoned": wasted,
            "abandoned_rendered_share": wasted / abandoned if abandoned else 0.0,
            "live_200": stayed.get("200", 0),
            "live_503": stayed.get("503", 0)}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--heavy", type=int, default=4, help="clients looping heavy /generate")
    ap.add_argument("--seconds", type=float, default=8.0, help="edit phase length (s)")
    ap.add_argument("--storm", type=int, default=1000, help="clients in the disconnect storm")
    ap.add_argument("--patience", type=float, default=0.0,
                    help="how long a storm client waits for its answer once sent (s; 0: it "
                    "hangs up right after sending)")
    ap.add_argument("--live", type=int, default=8,
                    help="clients that stay, sending edits through the storm")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    with bench_server("fairness", "--log-level", "warning", "--torch-threads", "1") as server:
        size = len(httpx.post(f"{server.url}/generate", json={"seed": 0}).json()[
            "faces"][0]["latent"])
        fair = [asyncio.run(beside_heavy(server.url, size, args.heavy, args.seconds, i))
                for i in range(args.runs)]
        storms = [asyncio.run(storm(server.url, size, args.storm, args.live, args.patience, i))
                  for i in range(args.runs)]
    code = server.exit_code
    out = {"beside_heavy": median_of(fair), "storm": median_of(storms),
           "runs": {"beside_heavy": fair, "storm": storms}, "server_exit": code}
    f, s = out["beside_heavy"], out["storm"]
    print(f"/edit beside {args.heavy} heavy /generate clients (medians of {args.runs} runs):")
    print(f"  idle  p50 {f['idle_p50_ms']:.1f} ms  p99 {f['idle_p99_ms']:.1f} ms")
    print(f"  busy  p50 {f['busy_p50_ms']:.1f} ms  p99 {f['busy_p99_ms']:.1f} ms  "
          f"p99 ratio {f['p99_ratio']:.2f} (goal < 5)")
    print(f"  heavy requests: {f['heavy_200']:.0f} served, {f['heavy_503']:.0f} turned away "
          f"(503, Retry-After up to {f['heavy_retry_after_max']:.0f} s)")
    print(f"disconnect storm: {s['sent']:.0f} clients, patience {args.patience} s:")
    print(f"  answered {s['answered']:.0f}, abandoned {s['abandoned']:.0f}, cancelled by the "
          f"server {s['cancelled']:.0f}, rendered for abandoned {s['rendered_for_abandoned']:.0f}"
          f" = {100 * s['abandoned_rendered_share']:.1f}% (goal < 5%)")
    print(f"  {args.live} clients that stayed: {s['live_200']:.0f} edits served, "
          f"{s['live_503']:.0f} turned away")
    print(f"server exit code on SIGTERM: {code}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
