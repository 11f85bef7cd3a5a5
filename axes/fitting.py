"""Fit one latent direction ("feature axis") per attribute with a GLM of the labels on z.

Input: latents ``z`` ``(N, L)`` and the extractor's attribute probabilities ``y`` ``(N, A)``.
Per attribute the samples are split (seeded, ``holdout`` fraction held out), a model of the
attribute on ``z`` is fitted on the training part with statsmodels, and the unit vector of
its slope coefficients is the raw axis.

Methods (``FIT_METHODS``: name -> fitting function)
---------------------------------------------------
``"glm-binomial"`` (default)
    Binomial GLM with logit link on the probabilities as a fractional response
    (Papke-Wooldridge quasi-likelihood), i.e. ``sm.GLM(p, sm.add_constant(z),
    family=sm.families.Binomial())``. It is fitted with ``sm.Logit(p, X)`` (Newton), which
    maximizes the *same* Bernoulli quasi-likelihood: parameters and standard errors are
    identical to ``sm.GLM`` (measured max difference 2e-15 / 1.5e-13; checked by
    ``tests/axes/test_axes_fitting.py``), and it is ~3x faster than GLM's IRLS (0.45 s vs
    1.35 s for 40,000 x 100 on this machine).
``"logit-binary"``
    Logistic regression on the binarized labels ``p > 0.5`` (``sm.Logit``).
``"linear-logit"``
    TL-GAN's recipe: OLS of ``logit(clip(p, eps, 1 - eps))`` on z (``sm.OLS``).

All three give a slope in logit units per unit of z, so ``coef_norm`` is the change in the
attribute's logit per unit step along the unit axis (for ``logit-binary`` it is the logit of
``P(p > 0.5)``, which is steeper than the extractor's own logit).

Why ``glm-binomial`` is the default (evidence: :mod:`axes.evidence`)
--------------------------------------------------------------------
Synthetic single-index data like a CNN labelling GAN samples (``make_synthetic``):
z ~ N(0, I_100), one planted unit direction w per attribute,
``p = sigmoid(s * (z . w) + b + noise)``, 8 attributes per scenario with biases spread over a
range (``SCENARIOS``). Mean cosine(recovered, planted) over the 8 attributes, N = 5,000
(20% held out), seed 0 (reproduce with ``python -m axes.evidence --compare``, ~1 min):

==================  ==================================  ======  ======  ======
scenario            extractor output                    glm     binary  linear
==================  ==================================  ======  ======  ======
calibrated          s=1.5, N(0,1) logit noise           0.9922  0.9728  0.9944
heavy-tailed        s=1.5, t3 logit noise               0.9846  0.9634  0.9862
confident-mistakes  s=1.5, 5% answers flipped p->1-p    0.9798  0.9496  0.9871
rare                s=1.5, ~3% positives                0.9875  0.8953  0.9942
overconfident       s=6, half of p within 1e-3 of 0/1   0.9979  0.9876  0.9937
saturated-float32   s=12, float32 p (5% exactly 0/1)    0.9988  0.9906  0.9858
mean                                                    0.9901  0.9599  0.9902
==================  ==================================  ======  ======  ======

Held-out deviance explained (mean over scenarios): glm 0.665, binary -0.443, linear 0.547.

Reading: ``logit-binary`` is clearly worst (binarizing throws away the graded confidence;
worst on rare attributes, min cosine 0.79). ``glm-binomial`` and ``linear-logit`` tie on
average: OLS on logits is the efficient estimator when the extractor's logits are unsaturated
with Gaussian-like noise (its own model; +0.002..0.007), but a CelebA CNN is overconfident and
its probabilities are stored as float32, where the GLM wins (+0.004..0.013). There OLS depends
on the arbitrary clip ``eps``: for s=12, float32, eps 1e-3 / 1e-6 / 1e-9 gives cosine 0.9864 /
0.9945 / 0.9978 and coef_norm 3.3 / 6.2 / 8.6 (true slope 12), while the GLM has no knob
(cosine 0.9988, coef_norm 10.8). The GLM also predicts calibrated probabilities (best held-out
deviance explained in every scenario), so its R^2 / deviance metrics mean something. Hence
``DEFAULT_METHOD = "glm-binomial"``; ``linear-logit`` stays available for TL-GAN parity.

Speed (``python -m axes.evidence --bench``): 40 attributes x 50,000 samples x 100 dims
(40,000 fitted per attribute) took 17 s with 1 worker thread at load average ~2 and 24 s with
the default 2 worker threads while other jobs loaded the 2 cores (load average 5-6):
glm-binomial 24.2 s, logit-binary 25.7 s, linear-logit 28.6 s. BLAS is limited to 1 thread
during the fit (``blas_threads``): with 2 OpenBLAS threads on a busy machine a single fit
took 4.5-8 s instead of 0.4 s. With L = 512 one attribute takes ~8 s (40 would take ~5 min).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from axes.maths import normalize
from tlgan_base.classifier_metrics import roc_auc

__all__ = [
    "DEFAULT_METHOD",
    "FIT_METHODS",
    "METHODS",
    "FitResult",
    "fit_axes",
    "fit_one",
    "reference_covariates",
    "roc_auc",
    "split_indices",
]

Method = Literal["glm-binomial", "logit-binary", "linear-logit"]
DEFAULT_METHOD: Method = "glm-binomial"
#: probabilities are clipped to [CLIP_EPS, 1 - CLIP_EPS] before taking logits / deviances
CLIP_EPS = 1e-3

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class FitResult:
    """Raw (not yet orthogonalized) axes and per-axis statistics from ``fit_axes``.

    Attributes:
        names: attribute names, one per axis.
        axes: ``(A, L)`` float64 unit rows: ``coef / |coef|``.
        stats: one dict per axis with ``name, method, coef (L,) ndarray, stderr (L,) ndarray,
            intercept, coef_norm, auc_holdout, r2_holdout, deviance_explained_holdout,
            positives_rate, mean_prob, n_train, n_holdout, converged, seconds``. Metrics that
            are undefined (no holdout, one class only) are ``None``.
        method, holdout, seed: the fitting settings.
        n: number of samples; latent_size: L; seconds: total wall time.
    """

    names: list[str]
    axes: NDArray[np.float64]
    stats: list[dict[str, Any]]
    method: str
    holdout: float
    seed: int
    n: int
    latent_size: int
    seconds: float = field(default=0.0)

    @property
    def coefs(self) -> NDArray[np.float64]:
        """``(A, L)`` raw GLM slope coefficients (logit per unit z)."""
        return np.stack([np.asarray(s["coef"], dtype=np.float64) for s in self.stats])

    def index(self, name: str) -> int:
        """Row of attribute ``name``; ValueError listing the valid names otherwise."""
        if name not in self.names:
            raise ValueError(f"name {name!r} is not a fitted attribute; valid: {self.names}")
        return self.names.index(name)


def split_indices(n: int, holdout: float, seed: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Seeded random split of ``range(n)`` into ``(train, held_out)`` sorted index arrays."""
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    n_hold = round(n * holdout)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_hold:]), np.sort(perm[:n_hold])


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


def _logit(p: NDArray[np.float64], eps: float = CLIP_EPS) -> NDArray[np.float64]:
    q = np.clip(p, eps, 1.0 - eps)
    out: NDArray[np.float64] = np.log(q) - np.log1p(-q)
    return out


def _binomial_deviance(p: NDArray[np.float64], mu: NDArray[np.float64]) -> float:
    """Sum of binomial deviance terms for fractional responses ``p`` and predictions ``mu``."""
    mu = np.clip(mu, 1e-12, 1.0 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(p > 0, p * np.log(p / mu), 0.0)
        t2 = np.where(p < 1, (1 - p) * np.log((1 - p) / (1 - mu)), 0.0)
    return float(2.0 * np.sum(t1 + t2))


FitFn = Callable[[NDArray[np.float64], NDArray[np.float64], str],
                 tuple[NDArray[np.float64], NDArray[np.float64], bool]]


def _fit_glm_binomial(x_train: NDArray[np.float64], p_train: NDArray[np.float64],
                      name: str) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """Binomial GLM on the probabilities as a fractional response (see module docstring)."""
    return _fit_logit(x_train, p_train, "glm-binomial", name)


def _fit_logit_binary(x_train: NDArray[np.float64], p_train: NDArray[np.float64],
                      name: str) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """Logistic regression on the binarized labels ``p > 0.5``."""
    return _fit_logit(x_train, (p_train > 0.5).astype(float), "logit-binary", name)


def _fit_logit(x_train: NDArray[np.float64], target: NDArray[np.float64], method: Method,
               name: str) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    import statsmodels.api as sm  # lazy: seconds to import; `tlgan --help` and serve need none

    if target.min() == target.max():
        raise ValueError(
            f"attribute {name!r}: every training label is {target.min():g}; a "
            f"{method} axis cannot be fitted (exclude this attribute)"
        )
    # Logit with a fractional endog maximizes exactly the binomial-GLM
    # quasi-likelihood (see module docstring); Newton is much faster than IRLS.
    res = sm.Logit(target, x_train, check_rank=False).fit(
        disp=0, method="newton", maxiter=100)
    converged = bool(res.mle_retvals.get("converged", True))
    if method == "logit-binary":
        eta = x_train @ np.asarray(res.params)
        if np.array_equal(eta > 0, target > 0.5):  # perfect separation: no MLE
            converged = False
    return (np.asarray(res.params, dtype=np.float64), np.asarray(res.bse, dtype=np.float64),
            converged)


def _fit_linear_logit(x_train: NDArray[np.float64], p_train: NDArray[np.float64],
                      name: str) -> tuple[NDArray[np.float64], NDArray[np.float64], bool]:
    """TL-GAN's recipe: OLS of ``logit(clip(p, eps, 1 - eps))``."""
    import statsmodels.api as sm  # lazy: seconds to import, only fitting needs it

    res = sm.OLS(_logit(p_train), x_train).fit()
    return np.asarray(res.params, dtype=np.float64), np.asarray(res.bse, dtype=np.float64), True


#: method name -> ``fit(x_train [1, z, covariates], p_train, name) -> (params, bse,
#: converged)``; ``METHODS`` and the CLI's ``--method`` choices are its keys
FIT_METHODS: dict[Method, FitFn] = {
    "glm-binomial": _fit_glm_binomial,
    "logit-binary": _fit_logit_binary,
    "linear-logit": _fit_linear_logit,
}
METHODS: tuple[Method, ...] = tuple(FIT_METHODS)


def _fit_statsmodels(x_train: NDArray[np.float64], p_train: NDArray[np.float64],
                     method: Method, name: str) -> tuple[NDArray[np.float64],
                                                         NDArray[np.float64], bool]:
    """Return ``(params (L+1,), bse (L+1,), converged)``; column 0 is the intercept.

    Thread-safe: touches no global state (warning filters are set once by the caller).
    """
    try:
        params, bse, converged = FIT_METHODS[method](x_train, p_train, name)
    except np.linalg.LinAlgError as exc:
        raise ValueError(f"attribute {name!r}: {method} fit failed ({exc}); the labels "
                         "may be perfectly separable or degenerate") from exc
    if not np.all(np.isfinite(params)):
        raise ValueError(f"attribute {name!r}: {method} fit gave non-finite coefficients")
    return params, bse, converged


def _fit_attribute(x_train: NDArray[np.float64], x_hold: NDArray[np.float64],
                   p_all: NDArray[np.float64], train: NDArray[np.intp],
                   hold: NDArray[np.intp], name: str, method: Method,
                   latent: int) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """Fit one attribute on the training rows; return ``(unit axis, stats)``.

    ``x_train`` is ``[1, z, covariates]``; ``x_hold`` is ``[z, covariates]`` of the held-out
    rows. The axis is the slope on the first ``latent`` columns (z) only.
    """
    t0 = time.perf_counter()
    params, bse, converged = _fit_statsmodels(x_train, p_all[train], method, name)
    coef = params[1:latent + 1]
    norm = float(np.linalg.norm(coef))
    if norm <= 1e-12:
        raise ValueError(f"attribute {name!r}: the fitted coefficients are all zero; "
                         "it has no direction in z")
    auc = r2 = dev_expl = None
    if hold.size:
        p_hold = p_all[hold]
        eta = params[0] + x_hold @ params[1:]
        mu = _sigmoid(eta)
        auc = roc_auc(p_hold > 0.5, x_hold[:, :latent] @ coef)  # the score along the axis
        sst = float(np.sum((p_hold - p_hold.mean()) ** 2))
        if sst > 0:
            r2 = 1.0 - float(np.sum((p_hold - mu) ** 2)) / sst
        null_mu = np.full_like(p_hold, float(np.clip(p_all[train].mean(), 1e-6, 1 - 1e-6)))
        dev_null = _binomial_deviance(p_hold, null_mu)
        if dev_null > 0:
            dev_expl = 1.0 - _binomial_deviance(p_hold, mu) / dev_null
    stats: dict[str, Any] = {
        "name": name,
        "method": method,
        "coef": coef.copy(),
        "stderr": bse[1:latent + 1].copy(),
        "intercept": float(params[0]),
        "intercept_stderr": float(bse[0]),
        "coef_norm": norm,
        "auc_holdout": auc,
        "r2_holdout": r2,
        "deviance_explained_holdout": dev_expl,
        "positives_rate": float(np.mean(p_all > 0.5)),
        "mean_prob": float(np.mean(p_all)),
        "n_train": int(train.size),
        "n_holdout": int(hold.size),
        "converged": converged,
        "seconds": time.perf_counter() - t0,
    }
    return coef / norm, stats


def _fit_columns(z: NDArray[np.float64], y: NDArray[np.float64], names: Sequence[str],
                 method: Method, train: NDArray[np.intp], hold: NDArray[np.intp],
                 progress: ProgressFn | None, n_jobs: int = 1,
                 blas_threads: int | None = 1,
                 covariates: NDArray[np.float64] | None = None
                 ) -> tuple[NDArray[np.float64], list[dict[str, Any]]]:
    """Fit every column of ``y``; ``n_jobs`` worker threads, BLAS limited to ``blas_threads``.
    ``covariates`` ``(N, C)`` are extra regressors whose slopes are not part of the axis."""
    # import statsmodels before silencing warnings: its import installs "always" filters
    # (lazy, as above: seconds to import, and `tlgan --help` imports this module)
    import statsmodels.api  # noqa: F401

    _, latent = z.shape
    if train.size < latent + 2:
        raise ValueError(f"z has too few training samples ({train.size}) for latent size "
                         f"{latent}; need at least {latent + 2}")
    x_all = z if covariates is None else np.hstack([z, covariates])
    x_train = np.empty((train.size, x_all.shape[1] + 1))
    x_train[:, 0] = 1.0
    x_train[:, 1:] = x_all[train]
    x_hold = x_all[hold]
    results: list[tuple[NDArray[np.float64], dict[str, Any]] | None] = [None] * len(names)

    def job(a: int) -> tuple[NDArray[np.float64], dict[str, Any]]:
        return _fit_attribute(x_train, x_hold, np.ascontiguousarray(y[:, a]), train, hold,
                              str(names[a]), method, latent)

    with warnings.catch_warnings(), threadpool_limits(blas_threads):
        # set once here: worker threads must not touch the (global) warning filters
        warnings.simplefilter("ignore")
        if n_jobs <= 1 or len(names) <= 1:
            for a in range(len(names)):
                results[a] = job(a)
                if progress is not None:
                    progress(a + 1, len(names), str(names[a]))
        else:
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                futures = {pool.submit(job, a): a for a in range(len(names))}
                try:
                    for done, fut in enumerate(as_completed(futures), start=1):
                        results[futures[fut]] = fut.result()
                        if progress is not None:
                            progress(done, len(names), str(names[futures[fut]]))
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    axes = np.stack([r[0] for r in results if r is not None])
    return axes, [r[1] for r in results if r is not None]


def fit_one(z: ArrayLike, p: ArrayLike, *, name: str = "attribute",
            method: str = DEFAULT_METHOD, holdout: float = 0.2, seed: int = 0,
            covariates: ArrayLike | None = None) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """Fit one attribute: return ``(unit axis (L,), stats dict)`` (see ``FitResult.stats``).

    ``covariates`` as for :func:`fit_axes`.
    """
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim != 2:
        raise ValueError(f"z must be a 2-D array (N, L), got shape {zz.shape}")
    pp = np.asarray(p, dtype=np.float64)
    if pp.shape != (zz.shape[0],):
        raise ValueError(f"p must have shape ({zz.shape[0]},), got {pp.shape}")
    cov = _check_covariates(covariates, zz.shape[0])
    train, hold = split_indices(zz.shape[0], holdout, seed)
    axes, stats = _fit_columns(zz, pp[:, None], [str(name)], _check_method(method), train,
                               hold, None, covariates=cov)
    return axes[0], stats[0]


def _check_covariates(covariates: ArrayLike | None, n: int) -> NDArray[np.float64] | None:
    if covariates is None:
        return None
    cov = np.asarray(covariates, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != n:
        raise ValueError(f"covariates must be a 2-D array ({n}, C) matching z's rows, got "
                         f"shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError("covariates contains NaN or infinite values")
    return cov if cov.shape[1] else None


def reference_covariates(probs: ArrayLike, *, eps: float = CLIP_EPS) -> NDArray[np.float64]:
    """Covariates for conditional fitting: the logits of the reference attributes'
    probabilities ``(N, R)``, clipped to [eps, 1 - eps] (see :func:`fit_axes`)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be a 2-D array (N, R), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min(initial=0.0) < 0 or p.max(initial=0.0) > 1:
        raise ValueError("probs must hold probabilities in [0, 1]")
    return _logit(p, eps)


def _check_method(method: str) -> Method:
    for m in METHODS:
        if method == m:
            return m
    raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")


def fit_axes(z: ArrayLike, y: ArrayLike, names: Sequence[str], method: str = DEFAULT_METHOD,
             holdout: float = 0.2, seed: int = 0, progress: ProgressFn | None = None,
             *, n_jobs: int | None = None, blas_threads: int | None = 1,
             covariates: ArrayLike | None = None) -> FitResult:
    """Fit one raw unit axis per attribute column of ``y``.

    Args:
        z: ``(N, L)`` latents.
        y: ``(N, A)`` attribute probabilities in [0, 1] (the extractor's output).
        names: ``A`` attribute names (unique).
        method: one of ``METHODS``; default ``"glm-binomial"`` (see the module docstring).
        holdout: fraction of samples held out (seeded split) for AUC / R^2 /
            deviance explained; 0 disables those metrics.
        seed: seed of the split.
        progress: optional ``progress(done, total, name)`` called (from the calling thread)
            after each attribute.
        n_jobs: attributes fitted in parallel threads; None = ``min(4, os.cpu_count())``.
            Results do not depend on it.
        blas_threads: BLAS threads during the fit (None = leave as is). The default 1 avoids
            OpenBLAS oversubscription, which made a single fit 10-20x slower on the shared
            2-core machine (0.4 s vs 4.5-8 s for 40,000 x 100).
        covariates: optional ``(N, C)`` extra regressors, fitted beside z but not part of
            the axis (*conditional fitting*): with the reference attributes' logits
            (:func:`reference_covariates`), each axis is the direction in z that changes the
            attribute *holding the references' outputs fixed*, which the extractor's
            nonlinearity otherwise folds into the slope (the orthogonal projection removes
            only the linear part). Then ``coef_norm`` is that conditional slope, and
            ``auc_holdout`` scores held-out samples by their position along the axis.

    Raises:
        ValueError: bad shapes/values (message names the argument), or an attribute that
            cannot be fitted (constant labels, zero coefficients; message names it).
    """
    t0 = time.perf_counter()
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim != 2 or zz.shape[1] == 0:
        raise ValueError(f"z must be a 2-D array (N, L), got shape {zz.shape}")
    if not np.all(np.isfinite(zz)):
        raise ValueError("z contains NaN or infinite values")
    yy = np.asarray(y, dtype=np.float64)
    if yy.ndim != 2 or yy.shape[0] != zz.shape[0]:
        raise ValueError(f"y must be a 2-D array ({zz.shape[0]}, A) matching z's rows, got "
                         f"shape {yy.shape}")
    if not np.all(np.isfinite(yy)) or yy.min(initial=0.0) < 0 or yy.max(initial=0.0) > 1:
        raise ValueError("y must hold probabilities in [0, 1]")
    names_l = [str(s) for s in names]
    if len(names_l) != yy.shape[1]:
        raise ValueError(f"names must have {yy.shape[1]} entries (one per column of y), got "
                         f"{len(names_l)}")
    if len(set(names_l)) != len(names_l):
        raise ValueError(f"names must be unique, got {names_l}")
    m = _check_method(method)
    train, hold = split_indices(zz.shape[0], holdout, seed)
    if n_jobs is None:
        n_jobs = min(4, os.cpu_count() or 1)
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    cov = _check_covariates(covariates, zz.shape[0])
    axes, stats = _fit_columns(zz, yy, names_l, m, train, hold, progress, n_jobs, blas_threads,
                               covariates=cov)
    return FitResult(names=names_l, axes=normalize(axes, name="axes"), stats=stats, method=m,
                     holdout=float(holdout), seed=int(seed), n=int(zz.shape[0]),
                     latent_size=int(zz.shape[1]), seconds=time.perf_counter() - t0)
