"""How well does teaching from a few marks recover a feature? A simulated user.

A CelebA attribute is held out (taught under a new name, as if the bundle did not have it);
the simulated user marks faces yes/no by the extractor's answer (P > 0.5). Like the web
page's grid, which shows faces so that both sides are likely, the marked faces are drawn
from a pool of random faces half with the feature and half without. For 10, 20, 50 and 100
marks and several random draws this prints the median of:

- cosine: between the taught axis and the axis fitted on that attribute's full labels (the
  extractor's probabilities of the bundle's shipped samples, fitted and orthogonalized the
  same way);
- response: the mean P(attribute) of held-out faces moved -3 .. +3 along the taught axis;
- the wall time per fit (``tlgan.teach.teach_axis``: render + embed the marks, head,
  scoring the shipped samples, GLM).

    python -m bench.teach                       # shipped CelebA bundle, CPU
    python -m bench.teach --attributes Smiling,Eyeglasses --draws 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from axes.maths import normalize, span_basis
from bench.common import print_table
from tlgan.axes_workflow import fit_new_axis
from tlgan.models import load_pipeline
from tlgan.teach import teach_axis

STEPS = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--attributes", default="Smiling,Eyeglasses,Bangs,Blond_Hair")
    ap.add_argument("--marks", default="10,20,50,100")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--pool", type=int, default=3000, help="Random faces to mark from.")
    ap.add_argument("--faces", type=int, default=24, help="Held-out faces per response.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--generator", default=None)
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--timing-only", type=int, default=0, metavar="RUNS",
                    help="Only time RUNS fits of 60 marks (median and breakdown), then stop.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(generator=args.generator, bundle=args.bundle, device=args.device)
    bundle = pipe.bundle
    assert bundle is not None
    cache = pipe.sample_cache()
    refs = list(bundle.references)
    basis = span_basis(np.stack([bundle.direction(r) for r in refs]))
    pool = pipe.seeds_to_latents(range(1_000_000, 1_000_000 + args.pool))
    t0 = time.perf_counter()
    pool_p = np.concatenate([pipe.label_latents(pool[i:i + 250])
                             for i in range(0, len(pool), 250)])
    print(f"labelled a pool of {len(pool)} faces in {time.perf_counter() - t0:.1f} s; "
          f"{cache.n} shipped samples; torch threads {torch.get_num_threads()}")
    test_z = pipe.seeds_to_latents(range(9000, 9000 + args.faces)).astype(np.float64)
    teach_axis(pipe, "warmup", pool[:20], (np.arange(20) % 2))  # imports, first calls
    if args.timing_only:
        col = pipe.attributes.index(args.attributes.split(",")[0])
        labels = (pool_p[:60, col] > 0.5).astype(int)
        runs = [teach_axis(pipe, "timed", pool[:60], labels).stats
                for _ in range(args.timing_only)]
        keys = ("embed_s", "head_s", "fit_s", "total_s")
        print(f"60 marks, {args.timing_only} fits, medians: " + ", ".join(
            f"{k} {statistics.median(r[k] for r in runs):.3f}" for k in keys)
              + f"; min total_s {min(r['total_s'] for r in runs):.3f}")
        return

    rows = []
    for attr in args.attributes.split(","):
        col = pipe.attributes.index(attr)
        raw_full, _ = fit_new_axis(bundle, cache, np.asarray(cache.probs)[:, col], attr)
        full = normalize(raw_full - basis.T @ (basis @ raw_full))
        yes = np.flatnonzero(pool_p[:, col] > 0.5)
        no = np.flatnonzero(pool_p[:, col] <= 0.5)
        full_resp = _response(pipe, test_z, full, col)
        for m in (int(x) for x in args.marks.split(",")):
            cosines, times, resps = [], [], []
            for draw in range(args.draws):
                rng = np.random.default_rng(draw)
                k = min(m // 2, len(yes), len(no))
                idx = np.concatenate([rng.choice(yes, k, replace=False),
                                      rng.choice(no, m - k, replace=False)])
                labels = (pool_p[idx, col] > 0.5).astype(int)
                taught = teach_axis(pipe, f"{attr}_taught", pool[idx], labels, seed=draw)
                times.append(taught.stats["total_s"])
                cosines.append(float(taught.direction @ full))
                resps.append(_response(pipe, test_z, taught.direction, col))
            resp = np.median(np.stack(resps), axis=0)
            rows.append([attr, m, f"{statistics.median(cosines):.3f}",
                         f"{min(cosines):.3f}", " ".join(f"{p:.2f}" for p in resp),
                         f"{statistics.median(times):.2f}"])
            print(rows[-1], flush=True)
        rows.append([attr, "full", "1.000", "1.000", " ".join(f"{p:.2f}" for p in full_resp),
                     "-"])
    print(f"\n{args.draws} draws per row (medians; marks half yes, half no); response: mean "
          f"P(attribute) of {args.faces} held-out faces at steps {STEPS}")
    print_table(["attribute", "marks", "cosine", "min cosine", "response -3..+3", "fit s"],
                rows)


def _response(pipe, z: np.ndarray, direction: np.ndarray, col: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    moved = np.concatenate([z + s * direction for s in STEPS]).astype(np.float32)
    p = pipe.label_latents(moved)[:, col]
    return np.asarray(p.reshape(len(STEPS), len(z)).mean(axis=1))


if __name__ == "__main__":
    main()
