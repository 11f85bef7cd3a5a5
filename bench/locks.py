"""Locks that hold per face: how far locked attributes drift under open-loop locks (the locked
axes projected out of the move) and under closed-loop locks (then corrected along the locked
axes until the extractor agrees: the edit use case, ``tlgan.pipeline.plan_edit``), on the
shipped models.

    python bench/locks.py                        # 100 faces x 6 axes, +3, locked Male
    python bench/locks.py --locked Male,Young --distance 2 --faces 50
    python bench/locks.py --realism off          # the realism hold off (default: the service's)

Per axis: mean and 90th percentile |P(locked, after) - P(locked, before)| over the faces, the
share of faces held within the tolerance (0.05), the target's mean change (so a lock that
also undoes the edit shows), and the time of one single-face edit in each mode (what one
/edit request costs; median over --timed faces).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# `python bench/x.py` puts bench/ first on sys.path, where axes.py and api.py would shadow our
# packages: replace it with the repository root and import the helpers as bench.common.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.common import print_table  # noqa: E402

AXES = "Heavy_Makeup,Smiling,Eyeglasses,Blond_Hair,No_Beard,Bald"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--axes", default=AXES)
    ap.add_argument("--locked", default="Male")
    ap.add_argument("--distance", type=float, default=3.0)
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--timed", type=int, default=30, help="single-face edits timed per mode")
    ap.add_argument("--realism", choices=["default", "on", "off"], default="default",
                    help="the realism hold of the closed-loop edits (default: the service's, "
                         "on with a critic)")
    args = ap.parse_args()
    realism = {"default": None, "on": True, "off": False}[args.realism]

    from tlgan.assembly import load_pipeline
    from tlgan.latents import sample_latents
    from tlgan.pipeline import LOCK_TOLERANCE, plan_edit

    p = load_pipeline()
    locked = args.locked.split(",")
    lcols = [p.attributes.index(a) for a in locked]
    z = sample_latents(range(args.seed, args.seed + args.faces), p.latent_size)
    before = p.label_latents(z)
    rows = []
    all_open, all_closed = [], []
    for axis in args.axes.split(","):
        tcol = p.attributes.index(axis)
        plan = plan_edit(p, z, {axis: args.distance}, locked, locality=False,
                         hold_references=False, realism=realism)
        _, po = p.render_and_label(plan.moved)
        assert po is not None
        pc = plan.run().probs
        assert pc is not None
        do = np.abs(po[:, lcols] - before[:, lcols]).max(axis=1)
        dc = np.abs(pc[:, lcols] - before[:, lcols]).max(axis=1)
        all_open.append(do)
        all_closed.append(dc)
        rows.append([axis, f"{do.mean():.3f} / {np.quantile(do, 0.9):.3f}",
                     f"{dc.mean():.3f} / {np.quantile(dc, 0.9):.3f}",
                     f"{np.mean(do <= LOCK_TOLERANCE):.0%} -> {np.mean(dc <= LOCK_TOLERANCE):.0%}",
                     f"{(po[:, tcol] - before[:, tcol]).mean():+.2f} / "
                     f"{(pc[:, tcol] - before[:, tcol]).mean():+.2f}"])
    o, c = np.concatenate(all_open), np.concatenate(all_closed)
    rows.append(["all", f"{o.mean():.3f} / {np.quantile(o, 0.9):.3f}",
                 f"{c.mean():.3f} / {np.quantile(c, 0.9):.3f}",
                 f"{np.mean(o <= LOCK_TOLERANCE):.0%} -> {np.mean(c <= LOCK_TOLERANCE):.0%}", ""])
    print(f"{args.faces} faces moved {args.distance:+g} along each axis, locked "
          f"{', '.join(locked)}, realism hold {'on' if plan.realism else 'off'}; drift = max "
          "over locked |dP| per face (mean / p90)")
    print_table(["axis", "open-loop drift", "closed-loop drift", "held <= 0.05",
                 "target dP open / closed"], rows)
    # one /edit request's model work: one face, open-loop vs closed-loop
    axis0 = args.axes.split(",")[0]
    t_open, t_closed = [], []
    for zi in z[: args.timed]:
        plan = plan_edit(p, zi[None], {axis0: args.distance}, locked, locality=False,
                         hold_references=False, realism=realism)
        t0 = time.perf_counter()
        p.render_and_label(plan.moved)
        t_open.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plan.run()
        t_closed.append(time.perf_counter() - t0)
    to, tc = statistics.median(t_open), statistics.median(t_closed)
    print(f"one face ({axis0} {args.distance:+g}, median of {len(t_open)}): open-loop "
          f"{1000 * to:.1f} ms, closed-loop {1000 * tc:.1f} ms ({tc / to:.1f}x)")


if __name__ == "__main__":
    main()
