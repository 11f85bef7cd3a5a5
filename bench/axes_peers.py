"""Our axes against InterFaceGAN's and TL-GAN's recipes, on one sample cache, judged by an
extractor that did not label the samples.

    python bench/axes_peers.py --samples runs/celeba-samples-120k --judge runs/judge-extractor

Fitted on the same cache (z and the labeller's probabilities), references Male and Young:

* **ours**: GLM (binomial) per attribute, non-reference axes conditional on the references'
  logits, references disentangled from each other, every other axis projected off their span
  (``tlgan axes fit``'s defaults);
* **InterFaceGAN**: a linear SVM on the top and bottom 2% of the samples by score (70/30
  split), conditional projection of each axis off the references (and of each reference off
  the other, InterFaceGAN's conditional editing);
* **TL-GAN**: linear regression of logit(p) on z, Gram-Schmidt in a fixed order (Male, then
  Young, then the rest).

Judge: ``--judge`` (an extractor weights folder trained apart from the labeller, e.g. with
``tlgan extractor train --depths 1,2,2,1``). For every axis, FACES faces (seeds 9000..) move
from -D to +D (``tlgan.axis_work.workflow.reference_drag``); per method: the judge's change of
P(target) and of P(Male) and P(Young).
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
from bench.common import print_table  # noqa: E402

REFS = ["Male", "Young"]
SHOW = ["Male", "Young", "Smiling", "Eyeglasses", "Blond_Hair", "No_Beard", "Wearing_Lipstick",
        "Heavy_Makeup", "Bangs", "Pale_Skin"]


def interfacegan_axes(z: np.ndarray, probs: np.ndarray, tail: float = 0.02,
                      seed: int = 0) -> np.ndarray:
    """InterFaceGAN's boundary per attribute: linear SVM on the score's top/bottom tails."""
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(seed)
    k = max(10, round(tail * len(z)))
    out = []
    for a in range(probs.shape[1]):
        order = np.argsort(probs[:, a])
        idx = np.concatenate([order[-k:], order[:k]])
        y = np.concatenate([np.ones(k), np.zeros(k)])
        perm = rng.permutation(len(idx))
        train = perm[: int(0.7 * len(perm))]
        svm = LinearSVC(C=1.0, dual=False, max_iter=5000).fit(z[idx[train]], y[train])
        w = svm.coef_.ravel()
        out.append(w / np.linalg.norm(w))
    return np.array(out)


def gram_schmidt_fixed(axes: np.ndarray, ref_idx: list[int]) -> np.ndarray:
    """TL-GAN: references orthogonalized in order, every other axis off all of them."""
    out = axes.copy()
    basis: list[np.ndarray] = []
    for i in ref_idx:
        v = axes[i] - sum((axes[i] @ b) * b for b in basis)
        out[i] = v / np.linalg.norm(v)
        basis.append(out[i])
    for i in range(len(axes)):
        if i not in ref_idx:
            v = axes[i] - sum((axes[i] @ b) * b for b in basis)
            out[i] = v / np.linalg.norm(v)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", required=True, help="sample cache (tlgan axes sample)")
    ap.add_argument("--judge", required=True, help="extractor weights folder (not the labeller)")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--distance", type=float, default=3.0)
    ap.add_argument("--axes", default="", help="comma-separated (default: all)")
    args = ap.parse_args()

    from axes.bundle import build_bundle
    from axes.fitting import fit_axes
    from axes.maths import orthogonalize
    from axes.samples import load_samples
    from tlgan.assembly import load_pipeline
    from tlgan.axis_work.workflow import fit_conditional, reference_drag

    cache = load_samples(args.samples)
    names = list(cache.attributes)
    z = np.asarray(cache.z, np.float64)
    probs = np.asarray(cache.probs, np.float64)
    ref_idx = [names.index(r) for r in REFS]
    prov = {"generator": cache.config["generator"], "extractor": cache.config["extractor"]}
    t0 = time.perf_counter()
    ours = build_bundle(fit_conditional(z, probs, names, REFS), REFS, prov).directions
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ifg = orthogonalize(interfacegan_axes(z, probs), ref_idx, references="mutual")
    t_ifg = time.perf_counter() - t0
    t0 = time.perf_counter()
    tl = gram_schmidt_fixed(fit_axes(z, probs, names, method="linear-logit").axes, ref_idx)
    t_tl = time.perf_counter() - t0
    methods = {"ours": np.asarray(ours, np.float64), "InterFaceGAN": ifg, "TL-GAN": tl}
    print(f"fitted on {len(z):,} samples: ours {t_ours:.0f} s, InterFaceGAN {t_ifg:.0f} s, "
          f"TL-GAN {t_tl:.0f} s", flush=True)

    judge = load_pipeline(generator=cache.config["generator"], extractor=args.judge,
                          bundle="none")
    if judge.extractor is not None and judge.extractor.sha256 == cache.config.get(
            "extractor_sha256"):
        raise SystemExit("error: --judge: that is the extractor that labelled the samples")
    wanted = [a for a in args.axes.split(",") if a] or names
    cols = [a for a in judge.attributes if a in names]  # attributes both extractors know
    results: dict[str, dict[str, tuple[float, float, float]]] = {a: {} for a in wanted}
    for m, dirs in methods.items():
        # (axes, attributes): the judge's mean change of each P between -D and +D
        drag = reference_drag(judge, dirs[[names.index(a) for a in wanted]], cols,
                              faces=args.faces, distance=args.distance, progress=False)
        for k, a in enumerate(wanted):
            results[a][m] = (float(drag[k, cols.index(a)]),
                             float(drag[k, cols.index("Male")]),
                             float(drag[k, cols.index("Young")]))
    rows = []
    for a in [x for x in SHOW if x in results] + [x for x in results if x not in SHOW]:
        cells = [a]
        for m in methods:
            t, dm, dy = results[a][m]
            worst = dy if a == "Male" else dm if a == "Young" else max(dm, dy, key=abs)
            cells.append(f"{t:+.2f} / {worst:+.2f}")
        rows.append(cells)
    print(f"\njudge {judge.extractor.name if judge.extractor else '?'}: {args.faces} faces moved "
          f"{-args.distance:+g}..{args.distance:+g}; cells: Δ P(target) / largest Δ P(reference) "
          "(for Male: Δ P(Young); for Young: Δ P(Male))")
    print_table(["axis", *methods], rows)
    print("\nsummary over all judged axes:")
    summary = []
    for m in methods:
        tgt = [results[a][m][0] for a in results]
        drags = [abs(x) for a in results for r, x in zip(REFS, results[a][m][1:], strict=True)
                 if r != a]
        summary.append([m, f"{np.mean(tgt):+.3f}", f"{np.mean(drags):.3f}",
                        f"{np.mean(np.array(drags) <= 0.10):.0%}"])
    print_table(["method", "mean Δ P(target)", "mean |Δ P(ref)|", "pairs with |Δ| <= 0.10"],
                summary)


if __name__ == "__main__":
    main()
