"""Teach a new axis from a few marked faces (latents labelled 0/1), in about a second.

The examples' faces are rendered and embedded by the extractor; a regularized logistic head
on those embeddings learns the feature (its C chosen by 5-fold cross-validated AUC, which
also gives the reported accuracy); the head scores the samples the bundle ships
(``samples.npz``: z and embeddings), and those probabilities are fitted on z with the GLM the
bundle's own axes were fitted with (``tlgan.axis_work.workflow.fit_new_axis``, the same as
``tlgan axes add``), conditional on the references it is to hold (``orthogonal_to``, default
the bundle's references). Used by ``POST /axes/fit`` and ``tlgan axes teach``.

Method ``"span-prior"`` (the default; evidence: ``python -m bench.teach --judge-age``):

- a prior toward what the bundle already knows: the part of the fitted direction inside the
  span of the bundle's axes is kept whole, the part outside is shrunk to ``SPAN_KEEP`` (a few
  dozen marks teach the head little beyond the features the extractor already names);
- the held references are held to first order: the direction is made orthogonal to their
  *raw* (GLM) directions, along which their logits change (other axes in ``orthogonal_to``:
  to their directions). With every reference held this is
  the same span as the bundle's reference directions; with some left out (``orthogonal_to``
  = ["Male"] for an "Older" axis that may change Young) it is what keeps P(Male) put (the
  bundle's Male direction is itself orthogonal to Young, not to Young's raw direction).

``span_terms`` narrows the prior to the few bundle axes that contribute most to the fitted
direction (a number, or ``"cv"``: chosen by cross-validation on the marks); the default keeps
the whole span (see ``SPAN_TERMS`` for the evidence).

The head is fitted on the embeddings by default; ``head_features="attributes"`` fits it on
the extractor's attribute logits instead (saved as the equivalent head on embeddings) and
``"auto"`` picks the one with the better cross-validated accuracy on the marks (see
``HEAD_FEATURES``). The axes held are recorded with a saved axis (``held_references``; see
``axes.bundle.AxisBundle.add_axis``), so ``tlgan axes teach/import --orthogonal-to`` keep
what they were taught with.

``"plain"`` is the previous recipe (conditional on all the bundle's references, orthogonal to
their final directions, no prior), kept for the bench's before/after comparison.

Marks: 0/1; ``None`` (or NaN) for a face its marker was not sure about (left out of the fit,
counted in ``stats["unsure"]``); or grades in [0, 1] (e.g. 0, 0.25, 0.5, 0.75, 1 for "much
less" .. "much more"): with any grade strictly between 0 and 1 the head is a ridge regression
of the grades on the embeddings, calibrated into probabilities
(``axes.heads.train_graded_head``), instead of the logistic head. Faces near the boundary
get coin-flip marks; the evidence for asking only for sure marks, or for grades, is
``python -m bench.teach --judge-age --skip-middle`` / ``--graded`` (docs/axes.md).

The head's cross-validated accuracy comes with its 95% Wilson interval; when that interval
reaches 0.5 the stats say ``near_chance`` with a ``warning`` sentence (the CLI refuses to save
such an axis without ``--force``; the web page shows the warning).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from axes.bundle import AxisBundle
from axes.heads import (
    Head,
    accuracy_evidence,
    cross_validate_graded,
    select_C,
    stratified_folds,
    train_graded_head,
    train_head,
)
from axes.maths import normalize, span_basis
from tlgan.axis_work.workflow import check_new_name, fit_new_axis, held_axes
from tlgan.pipeline import Pipeline
from tlgan_base.classifier_metrics import roc_auc

#: fewest and most examples a teaching request may carry
MIN_EXAMPLES = 10
MAX_EXAMPLES = 2000
#: teaching recipes (see the module docstring); the first is the default
TEACH_METHODS = ("span-prior", "plain")
#: share of the fitted direction outside the span of the bundle's axes that "span-prior"
#: keeps (evidence: bench/teach.py --judge-age rows B, C, D: 0.3, 0.1 and 0 are within the
#: draws' spread of each other; 0 would make a feature the bundle's axes do not span
#: unteachable, so some of the outside part is kept)
SPAN_KEEP = 0.3
#: ``span_terms``: how many of the bundle's axes the span prior keeps whole. None (the
#: default): all of them (the span); an int k: the k axes contributing most to the fitted
#: direction (least-squares coefficients times the axes' lengths), the rest of the direction
#: shrunk to ``span_keep``; ``"cv"``: k chosen among None and ``SPAN_TERMS`` by the 5-fold
#: cross-validated AUC of the held-out marks' latents projected on each fold's direction (the
#: marks alone decide). Evidence (bench/teach.py --judge-age, rows B and I, 10 draws): "cv"
#: did not move the judge's age further than the whole span at 20 and 40 marks (further at 60
#: on 40 faces, as far on 200), so the default stays None.
SPAN_TERMS = (1, 2, 3, 5, 8, 13)
#: what the head is fitted on: ``"embeddings"`` (the default: the extractor's penultimate
#: embedding), ``"attributes"`` (the extractor's attribute logits, a linear map of the
#: embedding: what the bundle already names, few weights), or ``"auto"`` (the one of the two
#: with the better cross-validated accuracy on the marks themselves, ties to
#: ``"attributes"``). Evidence (bench/teach.py --judge-age, rows B, E, F): neither
#: alternative moved the judge's age further than embeddings at 20/40/60 marks, and "auto"
#: doubles the cross-validation, so the default stays "embeddings".
HEAD_FEATURES = ("embeddings", "attributes", "auto")
#: |correlation| on the shipped samples between the taught feature and a held reference
#: above which the answer notes that holding the reference removes most of the feature
CORRELATION_NOTE = 0.7


@dataclass(frozen=True)
class TaughtAxis:
    """A taught axis.

    Attributes:
        name: the axis name.
        direction: ``(L,)`` unit direction, orthogonal to ``orthogonal_to``.
        raw_direction: ``(L,)`` unit GLM axis before orthogonalization.
        head: the classifier on extractor embeddings.
        stats: JSON numbers: counts per label, the head's cross-validated accuracy, the
            GLM's statistics (``coef_norm``, ``auc_holdout``, ...), timings.
    """

    name: str
    direction: np.ndarray
    raw_direction: np.ndarray
    head: Head
    stats: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``POST /axes/fit`` answers and ``tlgan axes import`` reads."""
        return {"name": self.name, "direction": [float(x) for x in self.direction],
                "head": self.head.to_dict(), "stats": self.stats}


def check_examples(pipeline: Pipeline, latents: Any, labels: Any,
                   field: str = "examples") -> tuple[np.ndarray, np.ndarray, int]:
    """Validated examples: the marked ones' latents (M, L) float32, their labels (M,) float64
    in [0, 1] (0/1, or grades) and how many were marked unsure (label None or NaN: left out);
    ValueError naming the field (``examples``, ``examples[i].latent``, ``examples[i].label``)
    otherwise. The count bounds apply to all examples; at least ``MIN_EXAMPLES`` must be
    marked, 2 of them above 0.5 and 2 below."""
    lab = list(labels)
    n = len(lab)
    if not MIN_EXAMPLES <= n <= MAX_EXAMPLES:
        raise ValueError(f"{field}: need {MIN_EXAMPLES}..{MAX_EXAMPLES} examples, got {n}")
    size = pipeline.latent_size
    rows = []
    for i, latent in enumerate(latents):
        z = np.asarray(latent, dtype=np.float64)
        if z.shape != (size,):
            raise ValueError(f"{field}[{i}].latent: expected {size} numbers (the latent size), "
                             f"got {z.size}")
        if not np.all(np.isfinite(z)) or np.abs(z).max() > 1000:
            raise ValueError(f"{field}[{i}].latent: must be finite numbers in [-1000, 1000]")
        rows.append(z)
    if len(rows) != n:
        raise ValueError(f"{field}: {len(rows)} latents but {n} labels")
    values = [_label_value(v, f"{field}[{i}].label") for i, v in enumerate(lab)]
    marked = [i for i, v in enumerate(values) if v is not None]
    if len(marked) < MIN_EXAMPLES:
        raise ValueError(f"{field}: need at least {MIN_EXAMPLES} examples marked (not unsure), "
                         f"got {len(marked)} ({n - len(marked)} unsure)")
    y = np.asarray([values[i] for i in marked], dtype=np.float64)
    above, below = int(np.sum(y > 0.5)), int(np.sum(y < 0.5))
    if above < 2 or below < 2:
        raise ValueError(f"{field}: need at least 2 examples of each label (0 and 1; grades "
                         f"count by their side of 0.5), got {below} with label 0 and {above} "
                         "with label 1")
    return np.stack([rows[i] for i in marked]).astype(np.float32), y, n - len(marked)


def _label_value(v: Any, field: str) -> float | None:
    """One example's label: None for unsure (None or NaN), else a number in [0, 1]."""
    if v is None:
        return None
    if isinstance(v, bool | np.bool_):
        return float(v)
    if not isinstance(v, int | float | np.integer | np.floating):
        raise ValueError(f"{field}: must be 0, 1, a grade in [0, 1] or null (unsure), got {v!r}")
    if np.isnan(v):
        return None
    if not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{field}: must be 0, 1, a grade in [0, 1] or null (unsure), got {v!r}")
    return float(v)


def teach_axis(pipeline: Pipeline, name: str, latents: Any, labels: Any,
               orthogonal_to: Sequence[str] | None = None, *, seed: int = 0,
               allow_existing: bool = False, method: str = TEACH_METHODS[0],
               head_features: str = HEAD_FEATURES[0],
               span_keep: float = SPAN_KEEP,
               span_terms: int | str | None = None) -> TaughtAxis:
    """Teach axis ``name`` from example latents (N, L) marked with ``labels`` (N,): 0/1,
    grades in [0, 1], or None/NaN for unsure (see the module docstring).

    ``orthogonal_to``: bundle references (or other axes) the new axis holds (None: the
    bundle's references; []: none). ``allow_existing`` lets ``name`` be a bundle axis (for
    ``--replace``). ``method``: one of ``TEACH_METHODS`` (see the module docstring).
    ``head_features``: one of ``HEAD_FEATURES``. ``span_keep``: the share of the direction
    outside the bundle's span that "span-prior" keeps (0..1). ``span_terms``: how many of
    the bundle's axes "span-prior" keeps whole (None: all; an int >= 1; ``"cv"``: chosen by
    cross-validation on the marks; see ``SPAN_TERMS``).

    Raises:
        ValueError: naming the field: ``name`` (empty, or an axis/attribute that exists),
            ``examples`` (count, fewer than 10 marked not unsure, one side of 0.5 only),
            ``examples[i].latent`` (wrong length, not finite), ``examples[i].label`` (not
            0..1 or None), ``orthogonal_to`` (unknown axis), or ``samples`` (the bundle
            ships no samples), ``method``, ``head_features`` (unknown, "attributes" with
            an extractor that has no linear attribute layer or with graded marks),
            ``span_keep`` (outside 0..1) or ``span_terms`` (not None, "cv" or an int >= 1).
    """
    t0 = time.perf_counter()
    bundle = pipeline.bundle
    if bundle is None:
        raise ValueError("name: this service has no axis bundle loaded to teach axes for")
    if method not in TEACH_METHODS:
        raise ValueError(f"method: must be one of {list(TEACH_METHODS)}, got {method!r}")
    if head_features not in HEAD_FEATURES:
        raise ValueError(f"head_features: must be one of {list(HEAD_FEATURES)}, got "
                         f"{head_features!r}")
    if not isinstance(span_keep, int | float) or not 0.0 <= float(span_keep) <= 1.0:
        raise ValueError(f"span_keep: must be a number in [0, 1], got {span_keep!r}")
    if not (span_terms is None or span_terms == "cv" or (
            isinstance(span_terms, int) and not isinstance(span_terms, bool)
            and span_terms >= 1)):
        raise ValueError(f"span_terms: must be None, 'cv' or an integer >= 1, got "
                         f"{span_terms!r}")
    attr_map = _attribute_map(pipeline)
    if head_features == "attributes" and attr_map is None:
        raise ValueError("head_features: the loaded extractor has no linear attribute layer "
                         "to fit on; use 'embeddings'")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise ValueError("name: must be a non-empty axis name of at most 64 characters")
    if not allow_existing and (name in bundle.names or name in pipeline.attributes):
        raise ValueError(f"name: {name!r} is already an axis or attribute of the loaded "
                         "bundle; choose another name")
    refs = list(bundle.references) if orthogonal_to is None else list(orthogonal_to)
    for r in refs:
        pipeline.axis_index(r, "orthogonal_to")
    z, y, unsure = check_examples(pipeline, latents, labels)
    graded = bool(np.any((y > 0.0) & (y < 1.0)))
    if graded and head_features == "attributes":
        raise ValueError("head_features: graded marks are fitted on the embeddings; use "
                         "'embeddings'")
    cache = pipeline.sample_cache()
    emb = pipeline.embed_latents(z)
    t_embed = time.perf_counter()
    cv: float | None
    cv_by: dict[str, float | None]
    if graded:
        head = train_graded_head(emb, y, seed=seed)
        cv, _, cv_n = cross_validate_graded(emb, y, seed=seed)
        used, cv_by = "embeddings", {"embeddings": cv}

        def fit_fold(e: np.ndarray, g: np.ndarray) -> Head:
            return train_graded_head(e, g, seed=seed)
    else:
        head, cv, used, cv_by = _fit_head(emb, y.astype(np.int64), seed, head_features,
                                          attr_map)
        cv_n = len(y)

        def fit_fold(e: np.ndarray, g: np.ndarray) -> Head:
            return _fit_head(e, g.astype(np.int64), seed, used, attr_map, c=head.C)[0]
    p_new = head.predict_proba(cache.embeddings)
    t_head = time.perf_counter()
    prior_share: float | None = None
    terms: int | None = None
    terms_cv: dict[str, float | None] | None = None
    if method == "plain":
        raw, fit_stats = fit_new_axis(bundle, cache, p_new, name, seed=seed)
        held = [np.asarray(bundle.direction(r), dtype=np.float64) for r in refs]
        direction = _held_off(raw, held)
    else:
        held = [_raw_direction(bundle, r) if r in bundle.references
                else np.asarray(bundle.direction(r), dtype=np.float64) for r in refs]
        terms = span_terms if not isinstance(span_terms, str) else None
        if span_terms == "cv":
            terms, terms_cv = _choose_span_terms(pipeline, name, z, emb, y, fit_fold, refs,
                                                 held, float(span_keep), seed)
        fitted, fit_stats = _fit_span(pipeline, name, p_new, refs, seed)
        raw, prior_share = _span_prior(bundle, fitted, refs, exclude=name,
                                       keep=float(span_keep), terms=terms)
        direction = _held_off(raw, held)
    raw = normalize(np.asarray(raw), name="raw_direction")
    t_fit = time.perf_counter()
    stats: dict[str, Any] = {k: v for k, v in fit_stats.items()
                             if not isinstance(v, np.ndarray)}
    evidence = accuracy_evidence(cv, cv_n)
    correlations = _reference_correlations(cache, p_new, list(bundle.references))
    notes = [f"{name} correlates {c:+.2f} with {r} on the shipped samples, and {r} is held "
             f"fixed, which removes most of it: to let {name} change {r}, leave {r} out of "
             "orthogonal_to" for r, c in correlations.items()
             if r in refs and abs(c) >= CORRELATION_NOTE]
    stats.update({
        "examples": len(y), "positives": int(np.sum(y > 0.5)),
        "negatives": int(np.sum(y < 0.5)), "unsure": unsure, "graded": graded,
        "middle": int(np.sum(y == 0.5)),
        "head_fit": "ridge on the grades, calibrated" if graded else "logistic",
        "head_cv_accuracy": cv,
        "head_cv_accuracy_low": evidence["cv_accuracy_low"],
        "head_cv_accuracy_high": evidence["cv_accuracy_high"],
        "near_chance": evidence["near_chance"], "warning": evidence["warning"],
        "head_val_auc": head.val_auc, "head_C": head.C, "head_features": used,
        "head_cv_accuracy_by_features": cv_by,
        "teach_method": method,
        "span_keep": float(span_keep) if method == "span-prior" else None,
        "span_share": prior_share,
        "span_terms": terms if method == "span-prior" else None,
        "span_terms_cv_auc": terms_cv, "orthogonal_to": refs,
        "reference_correlation": correlations, "notes": notes,
        "samples_scored": cache.n,
        "samples_positive_rate": float(np.mean(p_new > 0.5)),
        "raw_cosine_after_orthogonalization": float(raw @ direction),
        "embed_s": round(t_embed - t0, 4), "head_s": round(t_head - t_embed, 4),
        "fit_s": round(t_fit - t_head, 4), "total_s": round(time.perf_counter() - t0, 4),
    })
    return TaughtAxis(name=name, direction=direction, raw_direction=raw, head=head,
                      stats=stats)


def _attribute_map(pipeline: Pipeline) -> tuple[np.ndarray, np.ndarray] | None:
    """``(W (A, E), b (A,))`` with the extractor's attribute logits ``W @ e + b`` of an
    embedding ``e``, or None when the extractor has no such linear layer."""
    model = getattr(pipeline.extractor, "model", None)
    layer = getattr(model, "head", None)
    weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
    if weight is None or bias is None:
        return None
    w = weight.detach().double().cpu().numpy()
    b = bias.detach().double().cpu().numpy()
    if w.ndim != 2 or b.shape != (w.shape[0],) or pipeline.extractor is None \
            or w.shape[1] != pipeline.extractor.embedding_size:
        return None
    return w, b


def _fit_head(emb: np.ndarray, y: np.ndarray, seed: int, features: str,
              attr_map: tuple[np.ndarray, np.ndarray] | None, c: float | None = None
              ) -> tuple[Head, float | None, str, dict[str, float | None]]:
    """The head on the features ``features`` asks for (``"auto"``: the better
    cross-validated accuracy; ties to attributes), as a head on embeddings; returns it, its
    cross-validated accuracy, the features used and the accuracy per candidate. ``c``: a
    given ``C`` (``features`` must then be "embeddings" or "attributes"; no
    cross-validation, accuracy None)."""
    emb = np.asarray(emb, dtype=np.float64)
    cands = {"attributes": "attributes", "embeddings": "embeddings"}
    if features != "auto":
        cands = {features: features}
    elif attr_map is None:
        cands = {"embeddings": "embeddings"}
    fits: dict[str, tuple[float, float | None]] = {}
    for kind in cands:
        x = emb if kind == "embeddings" else emb @ attr_map[0].T + attr_map[1]  # type: ignore[index]
        fits[kind] = select_C(x, y, seed=seed) if c is None else (c, None)
    order = sorted(fits, key=lambda k: (-(fits[k][1] or 0.0), k != "attributes"))
    used = order[0]
    c_best, cv = fits[used]
    if used == "embeddings":
        head = train_head(emb, y, seed=seed, Cs=(c_best,))
    else:
        assert attr_map is not None
        w_attr, b_attr = attr_map
        small = train_head(emb @ w_attr.T + b_attr, y, seed=seed, Cs=(c_best,))
        scale = small.weights / small.std  # logit = (a - mean)/std . w + bias, a = W e + b
        head = Head(weights=w_attr.T @ scale,
                    bias=small.bias + float((b_attr - small.mean) @ scale),
                    mean=np.zeros(emb.shape[1]), std=np.ones(emb.shape[1]),
                    val_auc=small.val_auc, C=small.C, n_train=small.n_train,
                    positives_rate=small.positives_rate)
    return head, cv, used, {k: v[1] for k, v in fits.items()}


def _held_off(raw: np.ndarray, held: list[np.ndarray]) -> np.ndarray:
    """``raw`` made orthogonal to the directions ``held`` (unit length)."""
    basis = span_basis(np.stack(held)) if held else None
    out = raw if basis is None else raw - basis.T @ (basis @ raw)
    return normalize(out, name="direction")


def _fit_span(pipeline: Pipeline, name: str, p_new: np.ndarray, refs: Sequence[str],
              seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The GLM direction of a head's probabilities ``p_new`` on the shipped samples,
    conditional on the held references ("span-prior" before its prior)."""
    bundle, cache = pipeline.bundle, pipeline.sample_cache()
    assert bundle is not None
    fitted, fit_stats = fit_new_axis(bundle, cache, p_new, name, seed=seed,
                                     references=[r for r in refs if r in cache.attributes])
    return np.asarray(fitted, dtype=np.float64), fit_stats


def _choose_span_terms(pipeline: Pipeline, name: str, z: np.ndarray, emb: np.ndarray,
                       y: np.ndarray, fit_fold: Callable[[np.ndarray, np.ndarray], Head],
                       refs: Sequence[str], held: list[np.ndarray], keep: float, seed: int,
                       folds: int = 5) -> tuple[int | None, dict[str, float | None]]:
    """``span_terms`` chosen on the marks alone: per fold (stratified by the marks' side of
    0.5), the head ``fit_fold`` fits on the other marks (with ``C``, features and attribute
    map as chosen on all marks) and the GLM give a direction per candidate (None and
    ``SPAN_TERMS``); the held-out marks' latents are projected on it; the candidate with the
    best pooled AUC (over the marks not at 0.5) wins (ties go to None, then to more terms).
    Returns it and the AUC per candidate."""
    bundle = pipeline.bundle
    assert bundle is not None
    samples = pipeline.sample_cache().embeddings
    cands: list[int | None] = [None, *sorted(SPAN_TERMS, reverse=True)]
    side = np.sign(y - 0.5)
    k = min(folds, int(np.sum(side > 0)), int(np.sum(side < 0)))
    fold_of = stratified_folds(side, k, seed)
    scores = np.zeros((len(cands), len(y)))
    for f in range(k):
        train, test = fold_of != f, fold_of == f
        head = fit_fold(emb[train], y[train])
        fitted, _ = _fit_span(pipeline, name, head.predict_proba(samples), refs, seed)
        for i, terms in enumerate(cands):
            raw, _ = _span_prior(bundle, fitted, refs, exclude=name, keep=keep, terms=terms)
            scores[i, test] = np.asarray(z[test], dtype=np.float64) @ _held_off(raw, held)
    sided = side != 0
    aucs = {str(t): roc_auc(side[sided] > 0, scores[i, sided]) for i, t in enumerate(cands)}
    best = max(range(len(cands)), key=lambda i: (aucs[str(cands[i])] or 0.0, -i))
    return cands[best], aucs


def _raw_direction(bundle: AxisBundle, name: str) -> np.ndarray:
    """The axis's raw (GLM) direction: the one along which its logit changes."""
    return np.asarray(bundle.raw_directions[bundle.index(name)], dtype=np.float64)


def _span_prior(bundle: AxisBundle, fitted: np.ndarray, held: Sequence[str],
                exclude: str, keep: float = SPAN_KEEP,
                terms: int | None = None) -> tuple[np.ndarray, float]:
    """Shrink the part of ``fitted`` outside the span of what the bundle knows (its
    non-reference axes and the raw directions of the references not held; ``terms``: only
    the ``terms`` of them contributing most to ``fitted``) to ``keep``; returns the result
    and the share of ``fitted``'s squared length inside."""
    refs = set(bundle.references)
    rows = [_raw_direction(bundle, n) if n in refs
            else np.asarray(bundle.direction(n), dtype=np.float64)
            for n in bundle.names if n != exclude and n not in held]
    if not rows:
        return fitted, 0.0
    known = np.stack(rows)
    if terms is not None and terms < len(rows):
        coef, *_ = np.linalg.lstsq(known.T, fitted, rcond=None)
        order = np.argsort(-np.abs(coef) * np.linalg.norm(known, axis=1), kind="stable")
        known = known[order[:terms]]
    basis = span_basis(known)
    inside = basis.T @ (basis @ fitted)
    share = float(inside @ inside / (fitted @ fitted))
    return inside + keep * (fitted - inside), round(share, 4)


def _reference_correlations(cache: Any, p_new: np.ndarray, refs: list[str]) -> dict[str, float]:
    """Correlation of the taught feature's logit with each reference's on the samples."""
    def logit(p: np.ndarray) -> np.ndarray:
        q = np.clip(np.asarray(p, dtype=np.float64), 1e-3, 1 - 1e-3)
        return np.asarray(np.log(q) - np.log1p(-q))

    t = logit(p_new)
    out: dict[str, float] = {}
    for r in refs:
        if r not in cache.attributes:
            continue
        u = logit(np.asarray(cache.probs)[:, cache.attributes.index(r)])
        if np.std(t) > 0 and np.std(u) > 0:
            out[r] = round(float(np.corrcoef(t, u)[0, 1]), 4)
    return out


# ---------------------------------------------------------------------------- persisting
def read_examples(path: str | Path, pipeline: Pipeline) -> tuple[np.ndarray, np.ndarray]:
    """Read marked examples from a JSONL file (one ``{"latent": [...], "label": 0|1}`` or
    ``{"seed": int, "label": 0|1}`` per line) or a CSV with a ``label`` column and either a
    ``seed`` column or ``z0 .. z{L-1}`` columns. A label may also be a grade in [0, 1]
    (e.g. 0.25: "a little less of it") or unsure (JSON null, ``unsure``, ``?``): NaN in the
    labels returned, left out of the fit and counted. Seeds map to latents as everywhere
    (truncation 1). ValueError naming ``examples``, the file and the line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"examples: file {path} does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    latents: list[np.ndarray] = []
    labels: list[float] = []
    where = f"examples: {path}"

    def seed_latent(raw: Any, lineno: int) -> np.ndarray:
        try:
            seed = int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where} line {lineno}: seed {raw!r} is not an integer") from None
        if seed < 0:
            raise ValueError(f"{where} line {lineno}: seed must be >= 0")
        return np.asarray(pipeline.seeds_to_latents([seed])[0])

    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(lines))
        if not rows:
            raise ValueError(f"{where} is empty")
        header = [h.strip() for h in rows[0]]
        if "label" not in header:
            raise ValueError(f"{where} line 1: the header needs a 'label' column")
        zcols = [f"z{i}" for i in range(pipeline.latent_size)]
        if "seed" not in header and not all(c in header for c in zcols):
            raise ValueError(f"{where} line 1: the header needs 'seed' or z0..z"
                             f"{pipeline.latent_size - 1}")
        for lineno, rec in enumerate(rows[1:], start=2):
            if not "".join(rec).strip():
                continue
            if len(rec) != len(header):
                raise ValueError(f"{where} line {lineno}: expected {len(header)} fields")
            row = dict(zip(header, (r.strip() for r in rec), strict=True))
            try:
                latents.append(seed_latent(row["seed"], lineno) if "seed" in row
                               else np.array([float(row[c]) for c in zcols]))
            except ValueError as exc:
                raise ValueError(f"{where} line {lineno}: {exc}") from None
            labels.append(_label(row["label"], where, lineno))
    else:
        for lineno, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where} line {lineno}: not JSON ({exc})") from None
            if not isinstance(obj, dict) or "label" not in obj or not (
                    "latent" in obj or "seed" in obj):
                raise ValueError(f"{where} line {lineno}: expected an object with 'label' and "
                                 "'latent' or 'seed'")
            latents.append(seed_latent(obj["seed"], lineno) if "seed" in obj
                           else np.asarray(obj["latent"], dtype=np.float64))
            labels.append(_label(obj["label"], where, lineno))
    if not labels:
        raise ValueError(f"{where} holds no examples")
    sizes = {np.shape(z) for z in latents}
    if len(sizes) > 1 or sizes != {(pipeline.latent_size,)}:
        bad = next(i for i, z in enumerate(latents) if np.shape(z) != (pipeline.latent_size,))
        raise ValueError(f"{where}: example {bad + 1} has a latent of shape "
                         f"{np.shape(latents[bad])}, expected ({pipeline.latent_size},)")
    return np.stack(latents), np.asarray(labels, dtype=np.float64)


#: what a marks file may write for a face its user was not sure about (and JSON null)
UNSURE_WORDS = ("unsure", "?", "null")


def _label(raw: Any, where: str, lineno: int) -> float:
    """A marks file's label: 1/0 (true/false), a grade in [0, 1], or NaN for unsure (JSON
    null or one of ``UNSURE_WORDS``)."""
    if raw is None:
        return float("nan")
    if isinstance(raw, bool):
        return float(raw)
    text = str(raw).strip().lower()
    if text in UNSURE_WORDS:
        return float("nan")
    value = {"true": 1.0, "false": 0.0}.get(text)
    if value is None:
        try:
            value = float(text)
        except ValueError:
            value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise ValueError(f"{where} line {lineno}: label {raw!r} is not 0/1, a grade in [0, 1] "
                         f"or unsure ({'/'.join(UNSURE_WORDS)})")
    return value


def estimate_coef_norm(direction: np.ndarray, head: Head, cache: Any) -> float:
    """The head's logit change per unit step along ``direction``, by least squares over
    the cached samples (z, embeddings)."""
    p = np.clip(head.predict_proba(cache.embeddings), 1e-3, 1 - 1e-3)
    t = np.asarray(cache.z, dtype=np.float64) @ np.asarray(direction, dtype=np.float64)
    logit = np.log(p / (1 - p))
    var = float(np.var(t))
    return abs(float(np.cov(t, logit)[0, 1]) / var) if var > 0 else 1.0


def add_to_bundle(bundle_dir: str | Path, name: str, raw_direction: Any, head: Head | None,
                  stats: dict[str, Any], *, replace: bool = False,
                  replace_reference: bool = False,
                  held: Sequence[str] | None = None) -> AxisBundle:
    """Add axis ``name`` (with its head, if any, so it is first-class: a probability in
    ``features``, a ``features`` target) to the bundle folder atomically; the same refusal
    rules as ``tlgan axes add`` (an existing name needs ``replace``, a reference
    ``replace_reference``). ``held``: the axes it holds (``orthogonal_to``; None: the
    bundle's references), recorded per axis (``AxisBundle.add_axis``). Returns the saved
    bundle."""
    bundle = AxisBundle.load(bundle_dir)
    check_new_name(bundle, name, replace=replace, replace_reference=replace_reference)
    held = held_axes(bundle, name, None if held is None else list(held))
    full = dict(stats)
    if head is not None:
        full["head"] = head.to_dict()
        full["head_val_auc"] = head.val_auc
    if full.get("coef_norm") is None:
        if head is not None and bundle.has_samples:
            full["coef_norm"] = estimate_coef_norm(np.asarray(raw_direction), head,
                                                   bundle.load_samples())
            full["coef_norm_source"] = "estimated from the head on the shipped samples"
        else:
            full["coef_norm"] = 1.0
            full["coef_norm_source"] = "unknown (1.0 assumed)"
    new = bundle.add_axis(name, raw_direction, full, held=held)
    new.save(bundle_dir)
    return AxisBundle.load(bundle_dir)


def read_direction(path: str | Path, latent_size: int) -> tuple[np.ndarray, Head | None,
                                                                 dict[str, Any]]:
    """Read a direction JSON (``{"direction": [...], "head": {...}?, "stats": {...}?}``, as
    ``POST /axes/fit`` answers and the web page exports). ValueError naming the field."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"direction: file {path} does not exist")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"direction: {path} is not valid JSON ({exc})") from None
    if isinstance(obj, list):
        obj = {"direction": obj}
    if not isinstance(obj, dict) or "direction" not in obj:
        raise ValueError(f"direction: {path} must hold an object with a 'direction' list")
    try:
        d = np.asarray(obj["direction"], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("direction: must be a list of numbers") from None
    if d.shape != (latent_size,) or not np.all(np.isfinite(d)) or not np.any(d):
        raise ValueError(f"direction: expected {latent_size} finite numbers, not all zero "
                         f"(the bundle's latent size), got shape {d.shape}")
    head = None
    if obj.get("head") is not None:
        if not isinstance(obj["head"], dict):
            raise ValueError("head: must be an object (weights, bias, mean, std, ...)")
        try:
            head = Head.from_dict(obj["head"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"head: {exc}") from None
    raw_stats = obj.get("stats")
    stats: dict[str, Any] = raw_stats if isinstance(raw_stats, dict) else {}
    keep = {k: v for k, v in stats.items()
            if v is None or isinstance(v, str | int | float | bool | list)}
    held = keep.get("orthogonal_to")
    if held is not None and not (isinstance(held, list)
                                 and all(isinstance(h, str) for h in held)):
        raise ValueError("stats.orthogonal_to: must be a list of axis names")
    return d, head, keep
