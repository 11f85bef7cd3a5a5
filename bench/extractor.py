"""Benchmark: faces/s labelled by the extractor, next to the raw torch forward rate.

For each batch size (default 1, 64, 256) it times ``Extractor.predict`` on uint8 NHWC images
(conversion, resize if needed, normalization, forward over the weights' test-time views,
copy back), the same with a single view (no test-time augmentation), and the bare
``model(x)`` forward on a ready normalized tensor, in the same run; each figure is the median
of 5 runs.

    .venv/bin/python bench/extractor.py                      # default weights, cpu
    .venv/bin/python bench/extractor.py --device cuda --resolution 128 --json

Figures for celeba-cnn64 (one view: distilled from multi-view teachers) on this project's
machine, 2 shared AMD EPYC cores, 2 torch threads, 64 px input, 2026-11-26 (faces/s; they vary
~2x with the other jobs sharing the CPU):

    batch   label   label (1 view)   raw forward
        1     240              256           275
       64     517              519           540
      256     568              567           609

The previous default averaged 4 views and labelled ~125 faces/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _rate(fn: Callable[[], None], images_per_call: int, sync: Callable[[], None],
          runs: int, min_seconds: float) -> float:
    fn()  # warm-up
    sync()
    calls = 1
    while True:  # calls per run so that one run lasts at least min_seconds
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        if time.perf_counter() - t >= min_seconds or calls >= 1 << 12:
            break
        calls *= 2
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        rates.append(images_per_call * calls / (time.perf_counter() - t))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark and print a table (or JSON); returns the results."""
    import numpy as np
    import torch

    from feature_extractor.extractor_weights import load_extractor
    from feature_extractor.model import model_memory_format

    ap = argparse.ArgumentParser(description="Benchmark the attribute extractor.")
    ap.add_argument("--weights", default=None, help="registry name or weights folder")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-sizes", default="1,64,256")
    ap.add_argument("--resolution", type=int, default=64, help="input image size")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=0.3, help="per timed run")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ext = load_extractor(args.weights, args.device)
    dev = ext.device

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    rng = np.random.default_rng(0)
    rows = []
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        imgs = rng.integers(0, 256, (bs, args.resolution, args.resolution, 3), dtype=np.uint8)
        x = torch.rand(bs, 3, ext.input_size, ext.input_size, device=dev).contiguous(
            memory_format=model_memory_format(ext.model.cfg, dev))

        def label(imgs: np.ndarray = imgs, bs: int = bs) -> None:
            ext.predict(imgs, batch_size=bs)

        def label_1view(imgs: np.ndarray = imgs, bs: int = bs) -> None:
            views = ext.flip_tta, ext.tta_zooms
            ext.flip_tta, ext.tta_zooms = False, (1.0,)
            try:
                ext.predict(imgs, batch_size=bs)
            finally:
                ext.flip_tta, ext.tta_zooms = views

        def raw(x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                ext.model(x)

        rows.append({
            "batch": bs,
            "label_faces_per_s": round(_rate(label, bs, sync, args.runs, args.min_seconds), 1),
            "label_1view_faces_per_s": round(_rate(label_1view, bs, sync, args.runs,
                                                   args.min_seconds), 1),
            "raw_forward_faces_per_s": round(_rate(raw, bs, sync, args.runs,
                                                   args.min_seconds), 1),
        })
    result: dict[str, object] = {
        "weights": ext.name, "device": str(dev),
        "device_name": (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                        else platform.processor() or platform.machine()),
        "threads": torch.get_num_threads(), "resolution": args.resolution,
        "input_size": ext.input_size, "views": ext.views, "runs": args.runs,
        "results": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"extractor {ext.name} on {dev} ({result['device_name']}, "
              f"{result['threads']} threads), {args.resolution}px uint8 in, "
              f"{ext.views} test-time views, median of {args.runs} runs")
        print(f"{'batch':>6} {'label faces/s':>14} {'label 1-view':>13} "
              f"{'raw forward faces/s':>20}")
        for r in rows:
            print(f"{r['batch']:>6} {r['label_faces_per_s']:>14.1f} "
                  f"{r['label_1view_faces_per_s']:>13.1f} "
                  f"{r['raw_forward_faces_per_s']:>20.1f}")
    return result


if __name__ == "__main__":
    main()
