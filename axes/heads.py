"""Linear heads on frozen extractor embeddings: the maths behind "add a new axis".

A user labels some samples of a sample cache (0/1) for a new attribute; ``train_head`` fits
a standardized, class-balanced logistic regression on their embeddings; the head then scores
every sample of the cache (``Head.predict_proba``), and those probabilities are fitted on z
like any other attribute (``axes.fitting.fit_one``) to get the new raw axis for
``AxisBundle.add_axis``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from tlgan_base.artifact import ArtifactError, atomic_path
from tlgan_base.classifier_metrics import roc_auc

__all__ = ["DEFAULT_CS", "GRADED_ALPHAS", "Head", "accuracy_evidence", "cross_validate",
           "cross_validate_graded", "cross_validated_accuracy", "load_head", "save_head",
           "select_C", "stratified_folds", "train_graded_head", "train_head",
           "wilson_interval"]

#: inverse regularization strengths tried on the validation split
DEFAULT_CS: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
_STD_FLOOR = 1e-6
#: ridge penalties ``train_graded_head`` chooses among (by leave-one-out error), on
#: standardized embeddings
GRADED_ALPHAS: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass(frozen=True, eq=False)
class Head:
    """A logistic-regression head: ``p = sigmoid(((e - mean) / std) . weights + bias)``.

    Attributes:
        weights: ``(E,)`` weights on standardized embeddings.
        bias: intercept.
        mean, std: ``(E,)`` standardization of the embeddings.
        val_auc: AUC on the held-out validation split of the model that selected ``C``
            (None when it could not be computed).
        C: chosen inverse regularization strength.
        n_train: number of labelled samples; positives_rate: their fraction of 1s.
    """

    weights: NDArray[np.float64]
    bias: float
    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    val_auc: float | None
    C: float
    n_train: int
    positives_rate: float

    def __post_init__(self) -> None:
        w = np.array(self.weights, dtype=np.float64)
        m = np.array(self.mean, dtype=np.float64)
        s = np.array(self.std, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"weights must be a vector (E,), got shape {w.shape}")
        if m.shape != w.shape:
            raise ValueError(f"mean must have shape {w.shape}, got {m.shape}")
        if s.shape != w.shape or np.any(s <= 0):
            raise ValueError(f"std must have shape {w.shape} and be positive")
        for arr in (w, m, s):
            arr.setflags(write=False)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "mean", m)
        object.__setattr__(self, "std", s)
        object.__setattr__(self, "bias", float(self.bias))

    @property
    def embedding_size(self) -> int:
        return int(self.weights.shape[0])

    def decision_function(self, embeddings: ArrayLike) -> NDArray[np.float64]:
        """Logits ``(N,)`` for embeddings ``(N, E)``."""
        emb = np.asarray(embeddings, dtype=np.float64)
        if emb.ndim != 2 or emb.shape[1] != self.embedding_size:
            raise ValueError(f"embeddings must have shape (N, {self.embedding_size}), got "
                             f"{emb.shape}")
        out: NDArray[np.float64] = ((emb - self.mean) / self.std) @ self.weights + self.bias
        return out

    def predict_proba(self, embeddings: ArrayLike) -> NDArray[np.float64]:
        """Probabilities ``(N,)`` of the positive class for embeddings ``(N, E)``."""
        out: NDArray[np.float64] = 0.5 * (1.0 + np.tanh(0.5 * self.decision_function(
            embeddings)))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists of floats), e.g. to store in a bundle's per-axis stats."""
        return {"weights": self.weights.tolist(), "bias": self.bias,
                "mean": self.mean.tolist(), "std": self.std.tolist(),
                "val_auc": self.val_auc, "C": self.C, "n_train": self.n_train,
                "positives_rate": self.positives_rate}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Head:
        """Inverse of ``to_dict``; ValueError naming a missing key."""
        keys = ("weights", "bias", "mean", "std", "val_auc", "C", "n_train", "positives_rate")
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"d is missing head keys {missing}")
        auc = d["val_auc"]
        return cls(weights=np.asarray(d["weights"], dtype=np.float64), bias=float(d["bias"]),
                   mean=np.asarray(d["mean"], dtype=np.float64),
                   std=np.asarray(d["std"], dtype=np.float64),
                   val_auc=None if auc is None else float(auc), C=float(d["C"]),
                   n_train=int(d["n_train"]), positives_rate=float(d["positives_rate"]))


def _stratified_split(labels: NDArray[np.bool_], holdout: float,
                      rng: np.random.Generator) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    train: list[NDArray[np.intp]] = []
    val: list[NDArray[np.intp]] = []
    for cls in (False, True):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_val = min(max(1, round(idx.size * holdout)), idx.size - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _fit_lr(x: NDArray[np.float64], y: NDArray[np.bool_], c: float,
            seed: int) -> tuple[NDArray[np.float64], float]:
    # lazy: scikit-learn takes seconds to import; the server needs it only to teach an axis
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000,
                               random_state=seed)
    model.fit(x, y)
    return np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0])


def train_head(embeddings: ArrayLike, labels: ArrayLike, seed: int = 0, *,
               holdout: float = 0.2, Cs: Sequence[float] = DEFAULT_CS) -> Head:
    """Train a logistic-regression head on frozen embeddings.

    Embeddings are standardized; classes are balanced (``class_weight="balanced"``); ``C``
    is chosen among ``Cs`` by AUC on a seeded, stratified ``holdout`` split (ties go to the
    smaller C); the returned head is then refitted on all samples with that ``C``, and
    ``val_auc`` is the selection model's held-out AUC.

    Args:
        embeddings: ``(N, E)`` float embeddings (float16 is fine).
        labels: ``(N,)`` values in {0, 1} (or bool); each class needs >= 2 samples.
        seed: seed of the split and the solver.

    Raises:
        ValueError: bad shapes/values, naming the argument.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] == 0 or emb.shape[1] == 0:
        raise ValueError(f"embeddings must be a 2-D array (N, E), got shape {emb.shape}")
    if not np.all(np.isfinite(emb)):
        raise ValueError("embeddings contains NaN or infinite values")
    lab = np.asarray(labels)
    if lab.shape != (emb.shape[0],):
        raise ValueError(f"labels must have shape ({emb.shape[0]},), got {lab.shape}")
    if not np.all(np.isin(lab, (0, 1))):
        raise ValueError("labels must hold only 0 and 1")
    y = lab.astype(bool)
    n_pos = int(y.sum())
    if n_pos < 2 or y.size - n_pos < 2:
        raise ValueError(f"labels needs at least 2 samples of each class, got {n_pos} "
                         f"positives and {y.size - n_pos} negatives")
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    cs = [float(c) for c in Cs]
    if not cs or any(c <= 0 for c in cs):
        raise ValueError(f"Cs must be a non-empty list of positive numbers, got {list(Cs)}")

    rng = np.random.default_rng(seed)
    train, val = _stratified_split(y, holdout, rng)
    with threadpool_limits(1):  # avoid BLAS oversubscription on shared CPUs
        mean = emb[train].mean(axis=0)
        std = np.maximum(emb[train].std(axis=0), _STD_FLOOR)
        x_train = (emb[train] - mean) / std
        x_val = (emb[val] - mean) / std
        best: tuple[float, float] | None = None  # (auc, C)
        for c in sorted(cs):
            w, b = _fit_lr(x_train, y[train], c, seed)
            auc = roc_auc(y[val], x_val @ w + b)
            score = -np.inf if auc is None else auc
            if best is None or score > best[0] + 1e-9:
                best = (score, c)
        assert best is not None
        val_auc = None if not np.isfinite(best[0]) else float(best[0])
        c_best = best[1]
        mean = emb.mean(axis=0)
        std = np.maximum(emb.std(axis=0), _STD_FLOOR)
        w, b = _fit_lr((emb - mean) / std, y, c_best, seed)
    return Head(weights=w, bias=b, mean=mean, std=std, val_auc=val_auc, C=c_best,
                n_train=int(y.size), positives_rate=float(n_pos / y.size))


def _check_grades(emb: NDArray[np.float64], grades: ArrayLike) -> NDArray[np.float64]:
    """``grades`` as floats in [0, 1] with at least 2 on each side of 0.5 (ValueError naming
    ``embeddings`` or ``grades`` otherwise)."""
    if emb.ndim != 2 or emb.shape[0] == 0 or emb.shape[1] == 0:
        raise ValueError(f"embeddings must be a 2-D array (N, E), got shape {emb.shape}")
    if not np.all(np.isfinite(emb)):
        raise ValueError("embeddings contains NaN or infinite values")
    g = np.asarray(grades, dtype=np.float64)
    if g.shape != (emb.shape[0],):
        raise ValueError(f"grades must have shape ({emb.shape[0]},), got {g.shape}")
    if not np.all((g >= 0.0) & (g <= 1.0)):
        raise ValueError("grades must hold numbers in [0, 1]")
    above, below = int(np.sum(g > 0.5)), int(np.sum(g < 0.5))
    if above < 2 or below < 2:
        raise ValueError(f"grades needs at least 2 above 0.5 and 2 below, got {above} above "
                         f"and {below} below")
    return g


def _ridge(x: NDArray[np.float64], g: NDArray[np.float64],
           alphas: Sequence[float]) -> tuple[NDArray[np.float64], float, float]:
    """Ridge regression of ``g`` on standardized ``x``, the penalty chosen among ``alphas``
    by leave-one-out error: (weights, intercept, penalty)."""
    from sklearn.linear_model import RidgeCV  # lazy, as _fit_lr

    model = RidgeCV(alphas=tuple(float(a) for a in alphas)).fit(x, g)
    return (np.asarray(model.coef_, dtype=np.float64), float(model.intercept_),
            float(model.alpha_))


def train_graded_head(embeddings: ArrayLike, grades: ArrayLike, seed: int = 0, *,
                      alphas: Sequence[float] = GRADED_ALPHAS) -> Head:
    """A head from graded marks: ``grades`` in [0, 1] (e.g. 0, 0.25, 0.5, 0.75, 1 for "much
    less" .. "much more" of the feature). A ridge regression of the grades on the
    standardized embeddings (penalty among ``alphas`` by leave-one-out error) gives the
    score; a logistic calibration of that score on the grades as soft targets (each mark
    counts ``g`` as a 1 and ``1 - g`` as a 0) turns it into probabilities, so the result is
    an ordinary :class:`Head`. ``C`` records 1 / the penalty; ``val_auc`` is None (use
    :func:`cross_validate_graded`).

    Raises:
        ValueError: bad shapes or values, naming the argument (``grades`` needs at least 2
            marks above 0.5 and 2 below).
    """
    from sklearn.linear_model import LogisticRegression

    emb = np.asarray(embeddings, dtype=np.float64)
    g = _check_grades(emb, grades)
    if not alphas or any(float(a) <= 0 for a in alphas):
        raise ValueError(f"alphas must be a non-empty list of positive numbers, got "
                         f"{list(alphas)}")
    with threadpool_limits(1):
        mean = emb.mean(axis=0)
        std = np.maximum(emb.std(axis=0), _STD_FLOOR)
        w, b, alpha = _ridge((emb - mean) / std, g, alphas)
        score = (emb - mean) / std @ w + b
        both = np.concatenate([score, score])[:, None]
        target = np.concatenate([np.ones_like(g), np.zeros_like(g)])
        weight = np.concatenate([g, 1.0 - g])
        keep = weight > 0
        calib = LogisticRegression(C=1e4, max_iter=1000, random_state=seed).fit(
            both[keep], target[keep], sample_weight=weight[keep])
    a, c0 = float(calib.coef_[0, 0]), float(calib.intercept_[0])
    return Head(weights=w * a, bias=b * a + c0, mean=mean, std=std, val_auc=None,
                C=1.0 / alpha, n_train=int(g.size), positives_rate=float(g.mean()))


def cross_validate_graded(embeddings: ArrayLike, grades: ArrayLike, *, folds: int = 5,
                          seed: int = 0,
                          alphas: Sequence[float] = GRADED_ALPHAS) -> tuple[float, float | None,
                                                                            int]:
    """Stratified ``folds``-fold cross-validation of :func:`train_graded_head`'s ridge score
    (the penalty chosen again in each fold): ``(accuracy, AUC, n)`` over the ``n`` marks
    not at 0.5, a mark counting as right when its held-out score is on its side of 0.5.
    Folds are stratified by side (below, at, above 0.5); ValueError as
    :func:`train_graded_head`."""
    emb = np.asarray(embeddings, dtype=np.float64)
    g = _check_grades(emb, grades)
    side = np.sign(g - 0.5)
    k = min(folds, int(np.sum(side > 0)), int(np.sum(side < 0)))
    score = _out_of_fold(emb, side, k, seed,
                         lambda x, rows: _ridge(x, g[rows], alphas)[:2])
    sided = side != 0
    above = g[sided] > 0.5
    return (float(np.mean((score[sided] > 0.5) == above)), roc_auc(above, score[sided]),
            int(sided.sum()))


def stratified_folds(strata: ArrayLike, k: int, seed: int = 0) -> NDArray[np.intp]:
    """The fold (0..``k``-1) of each row: the rows of each stratum (each distinct value of
    ``strata``, in sorted order) are shuffled (seeded) and dealt round-robin, so every fold
    gets a near-equal share of every stratum."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k: must be a positive integer, got {k!r}")
    s = np.asarray(strata)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(s), dtype=np.intp)
    for cls in np.unique(s):
        idx = rng.permutation(np.flatnonzero(s == cls))
        fold_of[idx] = np.arange(idx.size) % k
    return fold_of


def _out_of_fold(emb: NDArray[np.float64], strata: NDArray[Any], k: int, seed: int,
                 fit: Callable[[NDArray[np.float64], NDArray[np.bool_]],
                               tuple[NDArray[np.float64], float]]) -> NDArray[np.float64]:
    """Out-of-fold scores of a linear model: the rows are dealt into ``k`` folds stratified
    by ``strata`` (seeded); per fold, ``fit(x, rows)`` gets the other folds' standardized
    embeddings and their row mask and returns (weights, intercept)."""
    fold_of = stratified_folds(strata, k, seed)
    out = np.empty(len(strata))
    with threadpool_limits(1):
        for f in range(k):
            train, test = fold_of != f, fold_of == f
            mean = emb[train].mean(axis=0)
            std = np.maximum(emb[train].std(axis=0), _STD_FLOOR)
            w, b = fit((emb[train] - mean) / std, train)
            out[test] = ((emb[test] - mean) / std) @ w + b
    return out


def cross_validate(embeddings: ArrayLike, labels: ArrayLike, C: float, *, folds: int = 5,
                   seed: int = 0) -> tuple[float, float | None] | None:
    """Stratified ``folds``-fold cross-validation of the head ``train_head`` fits
    (standardized, class-balanced logistic regression with inverse regularization ``C``):
    ``(accuracy, AUC of the pooled out-of-fold logits)``; fewer folds when a class has fewer
    examples; None when a class has fewer than 2."""
    emb = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    k = min(folds, int(y.sum()), int((~y).sum()))
    if k < 2:
        return None
    logits = _out_of_fold(emb, y, k, seed, lambda x, rows: _fit_lr(x, y[rows], C, seed))
    return float(np.mean((logits > 0) == y)), roc_auc(y, logits)


def cross_validated_accuracy(embeddings: ArrayLike, labels: ArrayLike, C: float, *,
                             folds: int = 5, seed: int = 0) -> float | None:
    """The accuracy of :func:`cross_validate` (None when a class has fewer than 2)."""
    out = cross_validate(embeddings, labels, C, folds=folds, seed=seed)
    return None if out is None else out[0]


def select_C(embeddings: ArrayLike, labels: ArrayLike, Cs: Sequence[float] = (0.01, 0.1, 1.0),
             *, folds: int = 5, seed: int = 0) -> tuple[float, float | None]:
    """The ``C`` among ``Cs`` with the best cross-validated AUC (then accuracy; ties go to
    the smaller C), and its cross-validated accuracy. Steadier than ``train_head``'s single
    split when there are only a few dozen examples."""
    best: tuple[float, float, float] | None = None  # (auc, accuracy, C)
    acc_of: dict[float, float | None] = {}
    for c in sorted(float(c) for c in Cs):
        res = cross_validate(embeddings, labels, c, folds=folds, seed=seed)
        acc, auc = (None, None) if res is None else res
        acc_of[c] = acc
        key = (-1.0 if auc is None else auc, -1.0 if acc is None else acc, c)
        if best is None or key[:2] > best[:2]:
            best = key
    assert best is not None
    return best[2], acc_of[best[2]]


def wilson_interval(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95% for ``z=1.96``) of an accuracy measured on ``n`` answers
    (e.g. the ``n`` out-of-fold predictions of :func:`cross_validate`)."""
    if n < 1 or not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy/n: need 0 <= accuracy <= 1 and n >= 1, got {accuracy}, {n}")
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * float(np.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)))
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_evidence(accuracy: float | None, n: int) -> dict[str, Any]:
    """How sure the cross-validated ``accuracy`` of ``n`` labelled examples is: its 95% Wilson
    interval (``cv_accuracy_low``/``cv_accuracy_high``), ``near_chance`` (the interval
    reaches 0.5: the labels may not be learnable from the embeddings) and, then, a
    ``warning`` sentence for the user. ``accuracy`` None (too few of a class to
    cross-validate) counts as near chance."""
    if accuracy is None:
        return {"cv_accuracy_low": None, "cv_accuracy_high": None, "near_chance": True,
                "warning": f"too few marks of each kind to cross-validate ({n} in all): the "
                           "axis may follow noise; mark more faces"}
    low, high = wilson_interval(accuracy, n)
    near = low <= 0.5
    warning = (f"cross-validated accuracy {accuracy:.2f} (95% interval {low:.2f}-{high:.2f} "
               f"from {n} marks) is near chance (0.5): the marks may not teach a feature the "
               "extractor sees; mark more faces or check the marks") if near else None
    return {"cv_accuracy_low": round(low, 4), "cv_accuracy_high": round(high, 4),
            "near_chance": near, "warning": warning}


def save_head(head: Head, path: str | os.PathLike[str]) -> Path:
    """Save ``head`` as an ``.npz`` of plain arrays (no pickle), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, weights=head.weights, bias=np.float64(head.bias), mean=head.mean,
                 std=head.std,
                 val_auc=np.float64(np.nan if head.val_auc is None else head.val_auc),
                 C=np.float64(head.C), n_train=np.int64(head.n_train),
                 positives_rate=np.float64(head.positives_rate))
    return path


def load_head(path: str | os.PathLike[str]) -> Head:
    """Load a head saved by ``save_head``; ArtifactError if missing or unreadable."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            d = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{path} is not a readable head file: {exc}") from exc
    try:
        auc = float(d["val_auc"])
        return Head(weights=d["weights"], bias=float(d["bias"]), mean=d["mean"],
                    std=d["std"], val_auc=None if np.isnan(auc) else auc, C=float(d["C"]),
                    n_train=int(d["n_train"]), positives_rate=float(d["positives_rate"]))
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"{path} is not a valid head file: {exc}") from exc
