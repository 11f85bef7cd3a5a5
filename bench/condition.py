"""Feature-conditioned generation: how often faces meet their targets, with and without the
best-of-K candidate starts, on the service's default models.

    python bench/condition.py [--seeds 20] [--candidates 16] [--device cpu]

For each target set (one to three attributes), it conditions the faces of seeds 1..N twice
(``Pipeline.conditioned_starts`` with 1 candidate, i.e. the seed's own latent, then with
``--candidates``) and prints the faces that met every target (|p - target| <= 0.2), the mean
distance moved in z and the wall time. The 1-candidate run is the baseline in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# `python bench/x.py` puts bench/ first on sys.path, where axes.py and api.py would shadow our
# packages: replace it with the repository root and import the helpers as bench.common.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
from api.loading import build_pipeline  # noqa: E402
from api.settings import load_settings  # noqa: E402
from bench.common import print_table  # noqa: E402

TARGET_SETS: list[dict[str, float]] = [
    {"Smiling": 0.9},
    {"Eyeglasses": 0.8},
    {"Male": 0.1},
    {"Smiling": 0.9, "Eyeglasses": 0.8},
    {"Smiling": 0.9, "Eyeglasses": 0.8, "Male": 0.1},
    {"Blond_Hair": 0.9, "Male": 0.1, "Young": 0.9},
    {"Bangs": 0.9, "Smiling": 0.1, "Wearing_Hat": 0.0},
]


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    pipeline = build_pipeline(load_settings(device=args.device))
    seeds = list(range(1, args.seeds + 1))
    rows = []
    totals = {1: [0, 0.0], args.candidates: [0, 0.0]}
    for targets in TARGET_SETS:
        row: list[object] = [" + ".join(f"{k} {v:g}" for k, v in targets.items())]
        for k in (1, args.candidates):
            t0 = time.perf_counter()
            start = pipeline.conditioned_starts(seeds, targets, candidates=k)
            res = pipeline.condition(start, targets)
            seconds = time.perf_counter() - t0
            met = sum(1 for unmet in res.unmet if not unmet)
            move = float(np.linalg.norm(res.latents - start, axis=1).mean())
            totals[k][0] += met
            totals[k][1] += move
            row += [f"{met}/{len(seeds)}", f"{move:.2f}", f"{seconds:.2f}"]
        rows.append(row)
    k = args.candidates
    print(f"models: {pipeline.describe()['generator']['name']}, extractor "
          f"{pipeline.describe()['extractor']}, bundle {pipeline.bundle_id}; seeds 1..{len(seeds)}")
    print_table(["targets", "met (1)", "move (1)", "s (1)", f"met ({k})", f"move ({k})",
                 f"s ({k})"], rows)
    n = len(TARGET_SETS) * len(seeds)
    print(f"\nall target sets: met every target {totals[1][0]}/{n} "
          f"({100 * totals[1][0] / n:.0f}%) from the seed's own latent, {totals[k][0]}/{n} "
          f"({100 * totals[k][0] / n:.0f}%) from the best of {k}; mean move in z "
          f"{totals[1][1] / len(TARGET_SETS):.2f} -> {totals[k][1] / len(TARGET_SETS):.2f}")


if __name__ == "__main__":
    main()
