"""The evidence behind :mod:`axes.fitting`'s default method: planted-direction synthetic data
(:func:`make_synthetic`, :data:`SCENARIOS`) and the comparison of the fitting methods on it
(:func:`compare_methods`); the results and their reading are in :mod:`axes.fitting`'s docstring.

``python -m axes.evidence [--compare] [--bench]`` reproduces the comparison / the timing.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from axes.fitting import DEFAULT_METHOD, METHODS, _sigmoid, fit_axes
from axes.maths import normalize

__all__ = ["SCENARIOS", "compare_methods", "make_synthetic"]

#: scenario name -> make_synthetic keyword arguments (8 attributes each in compare_methods)
SCENARIOS: dict[str, dict[str, Any]] = {
    "calibrated": {"scale": 1.5, "noise": "normal", "bias": (-3.0, 0.0)},
    "heavy-tailed": {"scale": 1.5, "noise": "t3", "bias": (-3.0, 0.0)},
    "confident-mistakes": {"scale": 1.5, "noise": "flip", "bias": (-3.0, 0.0)},
    "rare": {"scale": 1.5, "noise": "normal", "bias": (-4.0, -3.0)},
    "overconfident": {"scale": 6.0, "noise": "normal", "bias": (-12.0, 0.0)},
    "saturated-float32": {"scale": 12.0, "noise": "normal", "bias": (-24.0, 0.0),
                          "float32": True},
}


def make_synthetic(n: int, latent_size: int, n_attributes: int, *, scale: float = 1.5,
                   noise: str = "normal", bias: tuple[float, float] = (-3.0, 0.0),
                   flip_rate: float = 0.05, float32: bool = False,
                   seed: int = 0) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                           NDArray[np.float64]]:
    """Synthetic (z, p) data with a known unit direction per attribute.

    ``z ~ N(0, I)``; attribute ``a`` has a random unit direction ``w_a`` and bias ``b_a``
    spread over ``bias``; ``p = sigmoid(scale * (z . w_a) + b_a + e)`` with ``e`` standard
    normal (``noise="normal"``) or Student-t with 3 dof (``"t3"``) -- the extractor's own
    idiosyncratic error; ``"flip"`` adds normal noise and then turns a ``flip_rate`` fraction
    of the answers into confident mistakes (``p -> 1 - p``). ``float32`` rounds ``p`` to
    float32 like a sample cache does. Returns ``(z (n, L), p (n, A), directions (A, L))``.
    """
    if noise not in ("normal", "t3", "flip"):
        raise ValueError(f"noise must be 'normal', 't3' or 'flip', got {noise!r}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, latent_size))
    w = normalize(rng.standard_normal((n_attributes, latent_size)), name="directions")
    b = np.linspace(bias[0], bias[1], n_attributes)
    e = (rng.standard_t(3, size=(n, n_attributes)) if noise == "t3"
         else rng.standard_normal((n, n_attributes)))
    p = _sigmoid(scale * (z @ w.T) + b + e)
    if noise == "flip":
        flip = rng.random((n, n_attributes)) < flip_rate
        p = np.where(flip, 1.0 - p, p)
    if float32:  # as stored in a sample cache: saturated answers become exactly 0 or 1
        p = p.astype(np.float32).astype(np.float64)
    return z, p, w


def compare_methods(n: int = 5000, latent_size: int = 100, n_attributes: int = 8,
                    seed: int = 0, methods: Sequence[str] = METHODS,
                    scenarios: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Compare the fitting methods on planted-direction synthetic data (``SCENARIOS``).

    Returns one row per (scenario, method): mean/min cosine between recovered and planted
    directions, mean held-out AUC and deviance explained, and seconds.
    """
    rows: list[dict[str, Any]] = []
    for scen in scenarios if scenarios is not None else list(SCENARIOS):
        if scen not in SCENARIOS:
            raise ValueError(f"scenarios entry {scen!r} is unknown; valid: {list(SCENARIOS)}")
        z, p, w = make_synthetic(n, latent_size, n_attributes, seed=seed, **SCENARIOS[scen])
        names = [f"a{i}" for i in range(n_attributes)]
        for method in methods:
            res = fit_axes(z, p, names, method=method, seed=seed)
            cos = np.sum(res.axes * w, axis=1)
            aucs = [s["auc_holdout"] for s in res.stats if s["auc_holdout"] is not None]
            devs = [s["deviance_explained_holdout"] for s in res.stats
                    if s["deviance_explained_holdout"] is not None]
            rows.append({
                "scenario": scen,
                "method": method,
                "cosine_mean": float(np.mean(cos)),
                "cosine_min": float(np.min(cos)),
                "auc_mean": float(np.mean(aucs)) if aucs else None,
                "deviance_explained_mean": float(np.mean(devs)) if devs else None,
                "positives_rate_mean": float(np.mean([s["positives_rate"]
                                                      for s in res.stats])),
                "seconds": res.seconds,
            })
    return rows


def _main(argv: Sequence[str] | None = None) -> None:
    """``python -m axes.evidence [--compare] [--bench]``: reproduce the evidence / timing."""
    parser = argparse.ArgumentParser(prog="python -m axes.evidence")
    parser.add_argument("--compare", action="store_true", help="run compare_methods()")
    parser.add_argument("--bench", action="store_true",
                        help="time fit_axes on 40 attributes x 50,000 samples x 100 dims")
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS)
    parser.add_argument("--n-jobs", type=int, default=None)
    args = parser.parse_args(argv)
    if args.compare:
        for row in compare_methods():
            print(f"{row['scenario']:20s} {row['method']:13s} cos={row['cosine_mean']:.4f} "
                  f"min={row['cosine_min']:.4f} dev={row['deviance_explained_mean']:.3f} "
                  f"auc={row['auc_mean']:.4f} {row['seconds']:.1f}s")
    if args.bench:
        z, p, w = make_synthetic(50_000, 100, 40, seed=0)
        res = fit_axes(z, p, [f"a{i}" for i in range(40)], method=args.method,
                       n_jobs=args.n_jobs)
        cos = np.sum(res.axes * w, axis=1)
        print(f"{args.method}: 40 x 50,000 x 100 in {res.seconds:.1f} s "
              f"(min cosine to planted {cos.min():.4f})")


if __name__ == "__main__":
    _main()
