"""Benchmark: the extractor's training step and inference on the CPU, contiguous against
channels_last memory, in the same run (interleaved, so the shared CPU's load hits both).

This is the evidence behind ``tlgan_base.devices.memory_format``: channels_last is kept on
the CPU (except for models with fewer than 8 channels, where oneDNN's AVX2 kernels corrupt
memory in the backward pass, issue #23) because it is faster there too.

    .venv/bin/python bench/memory_format.py                     # default widths, 5 runs
    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python bench/memory_format.py --runs 3   # as on AVX2

Figures on this project's machine (2 shared cores with AVX-512, 2 torch threads, load ~9 from
other jobs, so absolute times are pessimistic; the ratio is the figure), 2026-12-07,
AttributeNet at its default widths 32-64-128-256, 64 px, median of runs:

    ISA                        step     contiguous   channels_last   channels_last/contiguous
    native (AVX-512), 5 runs   train    13166 ms     10990 ms        0.83
                               infer     6302 ms      3674 ms        0.58
    ONEDNN_MAX_CPU_ISA=AVX2,   train    14091 ms     12588 ms        0.89
    3 runs                     infer     6954 ms      4705 ms        0.68

(train: one AdamW step on a batch of 128; infer: a batch of 256 under inference_mode.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark and print one line per step; returns the ratios."""
    import torch
    import torch.nn.functional as F

    from feature_extractor.model import AttributeNet, ModelConfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", default="32,64,128,256", help="the model's stage widths")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--train-batch", type=int, default=128)
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(widths=tuple(int(w) for w in args.widths.split(",")))
    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    base = AttributeNet(cfg)
    models = {}
    for name, fmt in formats.items():
        m = AttributeNet(cfg)
        m.load_state_dict(base.state_dict())
        models[name] = m.to(memory_format=fmt)  # type: ignore[call-overload]
    opts = {n: torch.optim.AdamW(m.parameters(), lr=1e-3) for n, m in models.items()}
    xb = torch.randn(args.train_batch, 3, 64, 64)
    yb = (torch.rand(args.train_batch, cfg.num_attributes) > 0.5).float()
    xi = torch.randn(args.infer_batch, 3, 64, 64)

    def train_step(name: str) -> None:
        m = models[name].train()
        loss = F.binary_cross_entropy_with_logits(
            m(xb.contiguous(memory_format=formats[name])), yb)
        opts[name].zero_grad()
        loss.backward()
        opts[name].step()

    def infer(name: str) -> None:
        m = models[name].eval()
        with torch.inference_mode():
            m(xi.contiguous(memory_format=formats[name]))

    steps = {"train": train_step, "infer": infer}
    times: dict[tuple[str, str], list[float]] = {(s, n): [] for s in steps for n in formats}
    for fn in steps.values():  # warm-up
        for n in formats:
            fn(n)
    for _ in range(args.runs):
        for s, fn in steps.items():
            for n in formats:
                t = time.perf_counter()
                fn(n)
                times[(s, n)].append(time.perf_counter() - t)
    print(f"AttributeNet widths {args.widths}, {torch.get_num_threads()} threads, "
          f"median of {args.runs} runs")
    ratios = {}
    for s in steps:
        c = statistics.median(times[(s, "contiguous")])
        cl = statistics.median(times[(s, "channels_last")])
        ratios[s] = cl / c
        print(f"{s}: contiguous {c * 1000:.0f} ms, channels_last {cl * 1000:.0f} ms, "
              f"channels_last/contiguous {cl / c:.2f}")
    return ratios


if __name__ == "__main__":
    main()
