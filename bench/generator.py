"""Generator throughput: faces/s through FaceGenerator.render vs the raw torch forward.

    python bench/generator.py [--generator NAME] [--device cpu|cuda] [--repeats 5]

For each batch size, ``render`` (latents -> uint8 numpy faces, our interface) is timed next
to the bare ``module(z)`` forward on the same device, in the same run; ratio = render/raw.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

# `python bench/x.py` puts bench/ first on sys.path, where axes.py and api.py would shadow our
# packages: replace it with the repository root and import the helpers as bench.common.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
from bench.common import median_time, print_table  # noqa: E402
from tlgan.generators import load_generator  # noqa: E402
from tlgan.latents import sample_latents  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--generator", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", default="1,8,64")
    args = ap.parse_args()
    gen = load_generator(args.generator, args.device)
    sync = torch.cuda.synchronize if gen.device.type == "cuda" else (lambda: None)
    rows = []
    for b in (int(x) for x in args.batches.split(",")):
        z = sample_latents(range(b), gen.latent_size)
        zt = torch.as_tensor(z, device=gen.device)

        def raw(zt: torch.Tensor = zt) -> None:
            with torch.inference_mode():
                gen.module(zt)
            sync()

        def ours(z=z) -> None:  # type: ignore[no-untyped-def]
            gen.render(z)

        t_raw = median_time(raw, args.repeats)
        t_ours = median_time(ours, args.repeats)
        rows.append([b, b / t_ours, b / t_raw, f"{t_raw / t_ours:.2f}"])
    print(f"generator={gen.name} device={gen.device} torch_threads={torch.get_num_threads()} "
          f"median of {args.repeats}")
    print_table(["batch", "render faces/s", "raw forward faces/s", "ratio"], rows)


if __name__ == "__main__":
    main()
