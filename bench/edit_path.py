"""The single-request path of ``POST /edit`` (no features): HTTP overhead over the model work.

    python bench/edit_path.py [--runs 5] [--requests 300] [--generator NAME] [--profile FILE]

Prints, as medians of ``--runs`` runs on the same models (the service's defaults unless
given),

* (a) in process: render one face (no labels) + PNG encode + base64, the work /edit must do;
* (b) ``GET /healthz`` over HTTP at concurrency 1: the HTTP + client floor;
* (c) ``POST /edit`` without features over HTTP at concurrency 1: p50 and p99;

and the ratio (c) p50 / (a). "in server" is the mean time the server itself measured per
``/edit`` (its request-duration histogram at ``/metrics``), so (c) minus it is HTTP and the
client; "srv forward pass" is the mean of its forward passes (one face, no PNG).

The server is ``tlgan serve`` in a subprocess on a free loopback port (uvicorn + httptools,
as deployed); the client is one keep-alive ``httpx.Client`` with bodies encoded before
timing, so neither connection setup nor the client's JSON encoding of the request is
counted. Each run measures (a), (b) and (c) in turn for each latent, so that a change in
the shared machine's speed hits all three alike; (c)/(a) is the median of the runs'
ratios. The server and this process use the same number of torch threads (the server's
default: CPU cores - 1).

``--profile FILE`` runs the server under pyinstrument (``pip install pyinstrument``) and
writes its text report of the measured requests to FILE (the figures are then slower).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
from api.media import encode_b64  # noqa: E402
from api.settings import load_settings  # noqa: E402
from bench.api import load_models, server_options  # noqa: E402
from bench.common import bench_server, print_table  # noqa: E402
from tlgan.latents import sample_latents  # noqa: E402
from tlgan.server_process import DEFAULT_LAUNCHER  # noqa: E402


def _percentiles(times: list[float]) -> tuple[float, float]:
    arr = np.asarray(times) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def _server_seconds(client: httpx.Client) -> tuple[float, float, float, float]:
    """Sum of seconds and count of the server's own 2xx ``POST /edit`` timings (its
    ``tlgan_request_duration_seconds`` histogram, from request arrival to the last byte
    handed to the transport), then of its forward passes (``tlgan_batch_duration_seconds``)."""
    out = dict.fromkeys(("rs", "rc", "bs", "bc"), 0.0)
    for line in client.get("/metrics").text.splitlines():
        name = line.split("{", 1)[0] if "{" in line else line.split(" ", 1)[0]
        if name.startswith("tlgan_request_duration_seconds_"):
            if 'route="/edit"' not in line or 'status="2xx"' not in line:
                continue
            key = "r"
        elif name.startswith("tlgan_batch_duration_seconds_"):
            key = "b"
        else:
            continue
        if name.endswith("_sum"):
            out[key + "s"] = float(line.rsplit(" ", 1)[1])
        elif name.endswith("_count"):
            out[key + "c"] = float(line.rsplit(" ", 1)[1])
    return out["rs"], out["rc"], out["bs"], out["bc"]


def main() -> None:
    """Run the bench and print the table."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generator", default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=300, help="sequential requests per run")
    ap.add_argument("--profile", default=None, metavar="FILE",
                    help="profile the server with pyinstrument; text report to FILE")
    args = ap.parse_args()

    settings = load_settings(generator=args.generator, device=args.device)
    import torch

    threads = settings.resolved_torch_threads()
    torch.set_num_threads(threads)
    pipeline = load_models(settings)
    n = args.requests
    latents = sample_latents(range(1000, 1000 + n), pipeline.latent_size)
    bodies = [json.dumps({"latent": z.tolist(), "with_features": False}).encode()
              for z in latents]
    headers = {"content-type": "application/json"}

    def in_process(z: np.ndarray) -> float:
        t0 = time.perf_counter()
        images, _ = pipeline.render_and_label(z[None, :], with_features=False)
        encode_b64(images, "png", None)
        return time.perf_counter() - t0

    for z in latents[:20]:  # warm-up
        in_process(z)
    profiler = (["-m", "pyinstrument", "--interval", "0.0002", "-r", "text", "--show-all",
                 "-o", str(Path(args.profile).resolve())] if args.profile else None)
    launcher = [sys.executable, *profiler, "-m", "api.cli"] if profiler else DEFAULT_LAUNCHER
    base, floor, p50s, p99s, ratios, extra, inside, passes = ([] for _ in range(8))
    with bench_server("bench/edit_path.py", *server_options(settings),  # noqa: SIM117
                      launcher=launcher, ready_timeout=180, stop_timeout=20) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for i in range(20):  # warm-up (and the connection)
                client.get("/healthz").raise_for_status()
                client.post("/edit", content=bodies[i], headers=headers).raise_for_status()
            check = client.post("/edit", content=bodies[0], headers=headers).json()
            assert np.array_equal(np.asarray(check["latent"], np.float32), latents[0])
            for _ in range(args.runs):
                ta, tb, tc = [], [], []
                s0, n0, f0, m0 = _server_seconds(client)
                # (a), (b), (c) in turn per latent: the shared machine's speed drifts within
                # a run, and each step sees it as the others do
                for z, body in zip(latents, bodies, strict=True):
                    ta.append(in_process(z))
                    t0 = time.perf_counter()
                    client.get("/healthz").raise_for_status()
                    tb.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    r = client.post("/edit", content=body, headers=headers)
                    tc.append(time.perf_counter() - t0)
                    r.raise_for_status()
                s1, n1, f1, m1 = _server_seconds(client)
                if n1 > n0 and m1 > m0:
                    inside.append((s1 - s0) / (n1 - n0) * 1000.0)
                    passes.append((f1 - f0) / (m1 - m0) * 1000.0)
                a_ms, b_ms = _percentiles(ta)[0], _percentiles(tb)[0]
                p50, p99 = _percentiles(tc)
                base.append(a_ms)
                floor.append(b_ms)
                p50s.append(p50)
                p99s.append(p99)
                ratios.append(p50 / a_ms)
                extra.append(float(np.median(np.subtract(tc, ta))) * 1000.0)
    a, b, c50, c99, ratio, over = (statistics.median(v) for v in
                                   (base, floor, p50s, p99s, ratios, extra))
    srv = f"{statistics.median(inside):.2f}" if inside else "n/a"
    fwd = f"{statistics.median(passes):.2f}" if passes else "n/a"
    print(f"models: generator={pipeline.generator.name} device={pipeline.generator.device}; "
          f"cpu cores: {os.cpu_count()}; torch threads: {threads}; load average: "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"medians of {args.runs} runs of {n} sequential requests (one keep-alive client)\n")
    print_table(["(a) in-process ms", "(b) GET /healthz p50", "(c) /edit p50", "/edit p99",
                 "(c)/(a)", "(c)-(a) paired", "in server (mean)", "srv forward pass"],
                [[f"{a:.2f}", f"{b:.2f}", f"{c50:.2f}", f"{c99:.2f}", f"{ratio:.2f}x",
                  f"{over:.2f}", srv, fwd]])
    print("\n(a) render + PNG + base64 of one face in this process; times in ms; (c)/(a) is "
          "the median of the runs' ratios; (c)-(a) paired: the median over requests of "
          "(c) minus the (a) measured just before it")
    print("per run (a / b / c p50 / ratio): "
          + "; ".join(f"{x:.2f} / {y:.2f} / {z:.2f} / {r:.2f}x" for x, y, z, r in
                      zip(base, floor, p50s, ratios, strict=True)))


if __name__ == "__main__":
    main()
