"""REST API latency and throughput, next to the in-process render+encode rate.

    python bench/api.py [--generator NAME] [--extractor NAME|none] [--bundle DIR|none]
                        [--device cpu] [--runs 3] [--requests 200] [--concurrency 32]

Starts the real server (``tlgan serve`` in a subprocess on a free loopback port), then for
``/edit`` (without and with features) and ``/generate`` measures

* p50 / p99 latency at concurrency 1 (sequential requests),
* throughput (requests/s) at concurrency ``--concurrency`` (httpx.AsyncClient),

and, in this process on the same models, the batched render(+label)+encode rate (faces/s,
batches of ``max_batch``), i.e. what the hardware can do without HTTP. Each figure is the
median of ``--runs`` runs. Models default to the service's defaults; the environment
variables ``TLGAN_GENERATOR`` / ``TLGAN_EXTRACTOR`` / ``TLGAN_BUNDLE`` / ``TLGAN_DEVICE`` are
honoured like the server does. If the default extractor or bundle cannot be loaded, the
bench says so and runs without them (rows that need them are skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

# `python bench/x.py` puts bench/ first on sys.path, where axes.py and api.py would shadow our
# packages: replace it with the repository root and import the helpers as bench.common.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
from api.loading import build_pipeline  # noqa: E402
from api.media import encode_b64  # noqa: E402
from api.settings import Settings, load_settings  # noqa: E402
from bench.common import bench_server, print_table  # noqa: E402
from tlgan.latents import sample_latents  # noqa: E402
from tlgan.pipeline import Pipeline  # noqa: E402

GOALS_MS = {("/edit", False): 10.0, ("/edit", True): 20.0}


def load_models(settings: Settings) -> Pipeline:
    """Load the models in-process; a missing model stops the bench (pass 'none' explicitly)."""
    try:
        return build_pipeline(settings)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SystemExit(f"bench/api.py: cannot load the models: {first} "
                         "(use --extractor none / --bundle none to bench without them)") from None


def server_options(settings: Settings) -> list[str]:
    """``tlgan serve`` options for the models, device, batch and threads of ``settings``
    (warnings only, no access log)."""
    options = ["--device", settings.device, "--log-level", "warning", "--no-access-log",
               "--max-batch", str(settings.max_batch),
               "--torch-threads", str(settings.resolved_torch_threads())]
    for opt in ("generator", "extractor", "bundle"):
        value = getattr(settings, opt)
        if value is not None:
            options += [f"--{opt}", value]
    return options


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) process ``pid`` has used so far (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scenarios(pipeline: Pipeline) -> list[tuple[str, bool, Callable[[int], dict[str, Any]]]]:
    """(path, with_features, body factory) for each measured request type."""
    axes = pipeline.axis_names
    latents = sample_latents(range(1000, 1256), pipeline.latent_size)

    def edit(wf: bool) -> Callable[[int], dict[str, Any]]:
        def body(i: int) -> dict[str, Any]:
            moves = {axes[i % len(axes)]: 0.5} if axes else {}
            return {"latent": latents[i % len(latents)].tolist(), "moves": moves,
                    "with_features": wf}
        return body

    def generate(wf: bool) -> Callable[[int], dict[str, Any]]:
        return lambda i: {"seed": 5000 + i, "with_features": wf}

    labels = pipeline.extractor is not None
    out = [("/edit", False, edit(False))]
    if labels:
        out.append(("/edit", True, edit(True)))
    out.append(("/generate", labels, generate(labels)))
    return out


def in_process_rate(pipeline: Pipeline, with_features: bool, batch: int, repeats: int) -> float:
    """Faces/s for render(+label) of ``batch`` latents plus PNG+base64 encoding of each."""
    z = sample_latents(range(batch), pipeline.latent_size)

    def once() -> None:
        images, _ = pipeline.render_and_label(z, with_features=with_features)
        encode_b64(images, "png", None)

    once()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


async def latency(url: str, path: str, body: Callable[[int], dict[str, Any]] | None, n: int
                  ) -> tuple[float, float]:
    """p50 and p99 latency (ms) of ``n`` sequential requests: POST ``body(i)``, or GET when
    ``body`` is None."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def call(i: int) -> httpx.Response:
            if body is None:
                return await client.get(path)
            return await client.post(path, json=body(i))

        for i in range(10):  # warm-up
            (await call(i)).raise_for_status()
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            r = await call(i)
            times.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
    arr = np.asarray(times)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


async def throughput(url: str, path: str, body: Callable[[int], dict[str, Any]], n: int,
                     concurrency: int) -> float:
    """Requests/s for ``n`` requests from ``concurrency`` concurrent workers."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                (await client.post(path, json=body(i))).raise_for_status()

        await asyncio.gather(*(client.post(path, json=body(i)) for i in range(concurrency)))
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - t0)


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generator", default=None)
    ap.add_argument("--extractor", default=None, help="name, folder or 'none'")
    ap.add_argument("--bundle", default=None, help="folder or 'none'")
    ap.add_argument("--device", default=None)
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch intra-op threads, here and in the server (default: the "
                         "server's default, CPU cores - 1)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200,
                    help="sequential requests per latency run")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--throughput-requests", type=int, default=640)
    args = ap.parse_args()

    settings = load_settings(generator=args.generator, extractor=args.extractor,
                             bundle=args.bundle, device=args.device,
                             torch_threads=args.torch_threads)
    import torch

    torch.set_num_threads(settings.resolved_torch_threads())
    pipeline = load_models(settings)
    print(f"models: generator={pipeline.generator.name} "
          f"extractor={getattr(pipeline.extractor, 'name', None)} bundle={pipeline.bundle_id} "
          f"device={pipeline.generator.device}; cpu cores: {os.cpu_count()}; "
          f"torch threads: {torch.get_num_threads()}; load average: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    jobs = scenarios(pipeline)
    rates = {(p, wf): statistics.median(in_process_rate(pipeline, wf, settings.max_batch, 3)
                                        for _ in range(args.runs))
             for p, wf, _ in jobs}
    del pipeline  # free the in-process models before the server loads its own

    with bench_server("bench/api.py", *server_options(settings), ready_timeout=180,
                      stop_timeout=20) as server:
        # what HTTP and the client cost alone: GET /healthz
        floor = statistics.median(asyncio.run(latency(server.url, "/healthz", None,
                                                      args.requests))[0]
                                  for _ in range(args.runs))
        rows = []
        for path, wf, body in jobs:
            p50s, p99s, tps, cpus = [], [], [], []
            for _ in range(args.runs):
                c0 = cpu_seconds(server.pid)
                p50, p99 = asyncio.run(latency(server.url, path, body, args.requests))
                c1 = cpu_seconds(server.pid)
                if c0 is not None and c1 is not None:
                    cpus.append((c1 - c0) / (args.requests + 10) * 1000)
                p50s.append(p50)
                p99s.append(p99)
                tps.append(asyncio.run(throughput(server.url, path, body,
                                                  args.throughput_requests, args.concurrency)))
            p50, p99, tp = (statistics.median(v) for v in (p50s, p99s, tps))
            rate = rates[(path, wf)]
            goal = GOALS_MS.get((path, wf))
            ok = tp >= 0.5 * rate and (goal is None or p50 <= goal)
            cpu = f"{statistics.median(cpus):.1f}" if cpus else "n/a"
            rows.append([path, "yes" if wf else "no", f"{p50:.1f}", f"{p99:.1f}", cpu, f"{tp:.0f}",
                         f"{rate:.0f}", f"{100 * tp / rate:.0f}%",
                         f"<= {goal:g}" if goal else "-", "yes" if ok else "NO"])
        stats = httpx.get(f"{server.url}/stats", timeout=5).json()["batcher"]
    print(f"\nmedians of {args.runs} runs; latency: {args.requests} sequential requests; "
          f"throughput: {args.throughput_requests} requests at concurrency {args.concurrency}; "
          f"in-process: render(+label)+PNG+base64 in batches of {settings.max_batch}\n")
    print_table(["endpoint", "features", "p50 ms", "p99 ms", "srv CPU ms/req",
                 f"req/s @{args.concurrency}",
                 "in-proc faces/s", "ratio", "p50 goal ms", "goals met"], rows)
    sizes = sorted(((int(k), v) for k, v in stats["batch_sizes"].items()), reverse=True)[:6]
    print("\nsrv CPU ms/req: the server process's CPU time per request at concurrency 1: "
          "about its p50 on an idle machine with one torch thread, whatever else runs")
    print(f"HTTP floor: GET /healthz p50 {floor:.1f} ms at concurrency 1 (client + HTTP + "
          "routing, no model work)")
    print(f"\nserver batches: {stats['batches']} for {stats['faces']} faces; largest sizes "
          f"(size: count) {dict(sizes)}; rejected {stats['rejected']}")


if __name__ == "__main__":
    main()
