"""Choose the default truncation on evidence: Fréchet distance (extractor embeddings) of each
registered generator's faces at several psi, next to the real-vs-real floor, plus a 64-face
grid per setting to look at (broken faces are counted by eye; the grids are written so anyone
can recount).

    python bench/truncation.py --data ../shared/data/celeba-subset --out runs/truncation
    python bench/truncation.py --data D --generators celeba-dcgan64 --psi 1,0.8 --n 1000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# `python bench/x.py` puts bench/ first on sys.path, where axes.py and api.py would shadow our
# packages: replace it with the repository root and import the helpers as bench.common.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.common import print_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="CelebA-layout folder (real faces)")
    ap.add_argument("--generators", default="celeba-dcgan64,dcgan-digiface64")
    ap.add_argument("--psi", default="1.0,0.9,0.8,0.7")
    ap.add_argument("--n", type=int, default=2000, help="faces per FD estimate")
    ap.add_argument("--grid-seed", type=int, default=0, help="seeds of the 64-face grid")
    ap.add_argument("--out", type=Path, default=Path("runs/truncation"))
    args = ap.parse_args()

    from PIL import Image

    from tlgan.generators import load_generator
    from tlgan.latents import sample_latents
    from tlgan.training.export import image_grid
    from tlgan.training.frechet import load_metric_extractor
    from tlgan.training.scoring import score_generator

    args.out.mkdir(parents=True, exist_ok=True)
    ext = load_metric_extractor(None, "cpu")
    psis = [float(p) for p in args.psi.split(",")]
    rows, results = [], []
    for name in args.generators.split(","):
        gen = load_generator(name, "cpu")
        for psi in psis:
            r = score_generator(name, args.data, n=args.n, extractor=ext, truncation=psi)
            grid = image_grid(gen.render(sample_latents(range(args.grid_seed,
                                                               args.grid_seed + 64),
                                                         gen.latent_size, psi)))
            path = args.out / f"{name}-psi{psi:.1f}.png"
            Image.fromarray(grid).save(path)
            rows.append([name, f"{psi:.1f}", f"{r['fd']:.1f}", f"{r['floor']:.1f}",
                         f"{r['fd'] - r['floor']:.1f}", str(path)])
            results.append(r)
            print(f"{name} psi {psi:.1f}: FD {r['fd']:.1f} (floor {r['floor']:.1f})",
                  file=sys.stderr, flush=True)
    print_table(["generator", "psi", "FD", "floor", "FD - floor", "grid"], rows)
    (args.out / "truncation.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
