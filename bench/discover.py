"""Pick the default unsupervised-direction method on evidence: SeFa vs GANSpace-style PCA.

For each method, the top K directions of the loaded generator; for each direction the mean
change of every extractor attribute's probability when FACES seeded faces move from -3 to
+3 along it. Printed per method: how many directions move some attribute by >= 0.2, the
mean |dP| of each direction's top attribute, how many distinct attributes lead the strong
directions, the mean |cosine| to the nearest named bundle axis, the largest |cosine| between
two directions of the set (redundancy) and the wall time.

    PYTHONPATH=. python -m bench.discover [--k 10] [--faces 32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from axes.discover import discovery_scores
from bench.common import print_table
from tlgan.discover import METHODS, discover
from tlgan.models import load_pipeline


def redundancy(directions: np.ndarray) -> float:
    """The largest |cosine| between two different directions of a set."""
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    cos = np.abs(d @ d.T)
    np.fill_diagonal(cos, 0.0)
    return float(cos.max()) if len(d) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--faces", type=int, default=32)
    ap.add_argument("--threshold", type=float, default=0.2)
    args = ap.parse_args()
    pipeline = load_pipeline()
    print(pipeline.summary())
    rows = []
    for method in METHODS:
        t0 = time.perf_counter()
        found = discover(pipeline, method, args.k, faces=args.faces)
        wall = time.perf_counter() - t0
        sc = discovery_scores(found.moves, found.nearest, args.threshold)
        rows.append([method, int(sc["k"]), int(sc["strong"]), f"{sc['mean_top_dp']:.3f}",
                     int(sc["distinct_top"]), f"{sc.get('mean_nearest_cosine', 0.0):.3f}",
                     f"{redundancy(found.directions):.3f}", f"{wall:.1f}"])
        for r in found.rows(top=3):
            near = r["nearest_axis"]
            print(f"  {method} {r['index']}: " + ", ".join(
                f"{a} {v:+.2f}" for a, v in r["moves"].items())
                  + (f"  (nearest {near['name']} {near['cosine']:+.2f})" if near else ""))
    print_table(["method", "k", f"strong (>= {args.threshold})", "mean top |dP|",
                 "distinct top attrs", "mean |cos| nearest axis", "max |cos| within",
                 "wall s"], rows)


if __name__ == "__main__":
    main()
