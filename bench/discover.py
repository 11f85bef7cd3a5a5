"""Unsupervised directions on evidence: SeFa vs GANSpace-style PCA, and what PCA costs.

For each method, the top K directions of the loaded generator; for each direction the mean
change of every extractor attribute's probability when FACES seeded faces move from -3 to
+3 along it. Printed per method: how many directions move some attribute by >= 0.2, the
mean |dP| of each direction's top attribute, how many distinct attributes lead the strong
directions, the mean |cosine| to the nearest named bundle axis, the largest |cosine| between
two directions of the set (redundancy) and the wall time (median of RUNS).

Then PCA against its previous implementation, measured in the same run (BASELINE_RUNS,
0 to skip): a forward hook on the generator over full renders and a float64 SVD of the
(N, D) activations. Printed: the wall time of finding the directions (median), the ratio,
each direction's |cosine| with the baseline's, the peak RSS after each, and what one PCA
sample costs in face-passes (the figure behind ``tlgan.axis_work.discovery.PCA_SAMPLE_COST``).

    PYTHONPATH=. python -m bench.discover [--k 10] [--faces 32] [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from axes.unsupervised import discovery_scores
from bench.common import print_table
from tlgan.assembly import load_pipeline
from tlgan.axis_work.discovery import (
    METHODS,
    PCA_SAMPLES,
    discover,
    find_directions,
    pca_latents,
)
from tlgan.pipeline import Pipeline
from tlgan_base.devices import set_threads

T = TypeVar("T")


def redundancy(directions: np.ndarray) -> float:
    """The largest |cosine| between two different directions of a set."""
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    cos = np.abs(d @ d.T)
    np.fill_diagonal(cos, 0.0)
    return float(cos.max()) if len(d) > 1 else 0.0


def baseline_pca(pipeline: Pipeline, k: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA directions as they were computed before: a forward hook on the (shared)
    generator's second ReLU over full renders of 256 latents at a time, then a float64 SVD
    of the centred (N, D) activations and the regression of z on the components."""
    z = pca_latents(pipeline)
    acts = [m for m in pipeline.generator.module.modules()
            if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    got: list[torch.Tensor] = []

    def keep(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        got.append(out.detach().flatten(1).float().cpu())

    handle = acts[1].register_forward_hook(keep)
    try:
        for start in range(0, len(z), 256):
            pipeline.generator.render_tensor(z[start:start + 256])
    finally:
        handle.remove()
    act = torch.cat(got).numpy().astype(np.float64)
    act = act - act.mean(axis=0)
    u, s, _ = np.linalg.svd(act, full_matrices=False)
    coords = u[:, :k] * np.sqrt(len(act) - 1)
    coef, *_ = np.linalg.lstsq(coords, z - z.mean(axis=0), rcond=None)
    coef /= np.linalg.norm(coef, axis=1, keepdims=True)
    return coef, (s[:k] ** 2) / float((s ** 2).sum())


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], T], runs: int) -> tuple[T, float, list[float]]:
    """The last result of ``runs`` calls of ``fn``, the median and all wall times."""
    walls: list[float] = []
    out: T | None = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    assert out is not None
    return out, statistics.median(walls), walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--faces", type=int, default=32)
    ap.add_argument("--threshold", type=float, default=0.2)
    ap.add_argument("--runs", type=int, default=3, help="runs per method (median)")
    ap.add_argument("--baseline-runs", type=int, default=1,
                    help="runs of the previous PCA (it takes about a minute each; 0: skip)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = ap.parse_args()
    set_threads(args.threads)
    pipeline = load_pipeline()
    print(pipeline.summary())
    print(f"torch threads {args.threads}; {args.runs} runs per method; figures are medians")
    rows = []
    wall_of: dict[str, float] = {}
    rss_before = peak_rss_mb()
    rss_of: dict[str, float] = {}
    for method in METHODS:
        found, wall, walls = timed(partial(discover, pipeline, method, args.k,
                                           faces=args.faces), args.runs)
        wall_of[method] = wall
        rss_of[method] = peak_rss_mb()
        sc = discovery_scores(found.moves, found.nearest, args.threshold)
        rows.append([method, int(sc["k"]), int(sc["strong"]), f"{sc['mean_top_dp']:.3f}",
                     int(sc["distinct_top"]), f"{sc.get('mean_nearest_cosine', 0.0):.3f}",
                     f"{redundancy(found.directions):.3f}", f"{wall:.1f}",
                     " ".join(f"{w:.1f}" for w in walls)])
        for r in found.rows(top=3):
            near = r["nearest_axis"]
            print(f"  {method} {r['index']}: " + ", ".join(
                f"{a} {v:+.2f}" for a, v in r["moves"].items())
                  + (f"  (nearest {near['name']} {near['cosine']:+.2f})" if near else ""))
    print_table(["method", "k", f"strong (>= {args.threshold})", "mean top |dP|",
                 "distinct top attrs", "mean |cos| nearest axis", "max |cos| within",
                 "wall s (median)", "runs s"], rows)

    print(f"peak RSS: {rss_before:.0f} MB at the start, {rss_of['sefa']:.0f} MB after sefa, "
          f"{rss_of['pca']:.0f} MB after pca")

    # PCA's parts, and the previous implementation in the same run
    (dirs, _), find_s, _ = timed(partial(find_directions, pipeline, "pca", args.k), args.runs)
    moves_s = wall_of["sefa"]  # SeFa's own directions take milliseconds: its wall is the moves
    faces_rendered = 2 * args.k * args.faces
    sample_cost = (find_s / PCA_SAMPLES) / (moves_s / faces_rendered)
    print(f"\nPCA: finding the directions {find_s:.2f} s (median of {args.runs}); measuring "
          f"the moves of {args.k} ({faces_rendered} faces rendered and labelled) "
          f"{moves_s:.2f} s (sefa's wall); one PCA sample costs {sample_cost:.2f} face-passes")
    if args.baseline_runs > 0:
        (old, _), old_s, old_walls = timed(lambda: baseline_pca(pipeline, args.k),
                                           args.baseline_runs)
        rss_old = peak_rss_mb()
        cos = np.abs((old * dirs).sum(axis=1))
        print(f"previous PCA: finding the directions {old_s:.2f} s (median of "
              f"{args.baseline_runs}: {' '.join(f'{w:.1f}' for w in old_walls)}); now "
              f"{old_s / find_s:.1f}x faster; whole discovery {old_s + moves_s:.1f} s -> "
              f"{find_s + moves_s:.1f} s; peak RSS -> {rss_old:.0f} MB")
        print("|cosine| of each direction with the previous one: "
              + " ".join(f"{c:.6f}" for c in cos))


if __name__ == "__main__":
    main()
