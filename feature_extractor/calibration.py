"""Probability calibration of a trained extractor (Platt scaling, folded into its head).

Training weights rare positives up (``pos_weight``), so raw outputs overstate rare attributes
(the shipped student's raw P(Bald) of 0.50 means 0.28 on held-out faces). Platt scaling fits,
per attribute, a scale ``a`` and shift ``b`` so that ``sigmoid(a * logit + b)`` matches the
labels of held-out images (the validation partition). The head is linear, so the map folds
into its weights exactly: ``W' = a W``, ``bias' = a bias + b``; the calibrated model is the
same network, just as fast, and ROC-AUC is unchanged (each attribute's map is increasing).

:func:`fit_platt` and :func:`fold_into_head` are pure; :func:`calibrate_extractor` fits and
folds in one go (training ends with it); :func:`calibrate_weights` is what
``tlgan extractor calibrate`` runs on a weights folder.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from feature_extractor.celeba_index import read_celeba
from feature_extractor.evaluation import align_attributes, evaluate, predict_index
from feature_extractor.extractor_weights import WEIGHTS_FILE, load_extractor
from feature_extractor.model import AttributeNet, Extractor
from tlgan_base.artifact import atomic_artifact_dir, save_config

Log = Callable[[str], None]


def fit_platt(logits: np.ndarray, labels: np.ndarray, *, iterations: int = 50
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per-attribute Platt scaling: ``(scale (A,), shift (A,))``.

    Minimizes the cross-entropy of ``sigmoid(scale * logit + shift)`` against Platt's
    smoothed targets (``(P + 1) / (P + 2)`` for positives, ``1 / (N + 2)`` for negatives,
    which keeps rare attributes from overfitting) by damped Newton steps. Attributes with a
    single class, or whose fitted scale is not positive, keep the identity (1, 0).

    Args:
        logits: (N, A) raw logits of held-out images.
        labels: (N, A) 0/1 labels of the same images.

    Raises:
        ValueError: shapes differ, are not 2-D, or there are no rows.
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits: expected a non-empty (N, A) array, got shape {logits.shape}")
    if labels.shape != logits.shape:
        raise ValueError(f"labels: expected shape {logits.shape} like logits, got {labels.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits: must be finite")
    y = labels.astype(bool)
    scale = np.ones(logits.shape[1])
    shift = np.zeros(logits.shape[1])
    for j in range(logits.shape[1]):
        pos = int(y[:, j].sum())
        neg = y.shape[0] - pos
        if pos == 0 or neg == 0:
            continue
        t = np.where(y[:, j], (pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0))
        a, b = _newton(logits[:, j], t, iterations)
        if a > 0 and np.isfinite(a) and np.isfinite(b):
            scale[j], shift[j] = a, b
    return scale, shift


def _loss(x: np.ndarray, t: np.ndarray, a: float, b: float) -> float:
    s = a * x + b
    return float(np.sum(np.logaddexp(0.0, s) - t * s))


def _newton(x: np.ndarray, t: np.ndarray, iterations: int) -> tuple[float, float]:
    a, b = 1.0, 0.0
    current = _loss(x, t, a, b)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a * x + b)))
        r = p - t
        g = np.array([np.dot(r, x), r.sum()])
        w = p * (1.0 - p)
        h = np.array([[np.dot(w, x * x), np.dot(w, x)], [np.dot(w, x), w.sum()]])
        h += 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        lam = 1.0
        while lam > 1e-6:
            na, nb = a - lam * step[0], b - lam * step[1]
            new = _loss(x, t, na, nb)
            if new <= current:
                break
            lam /= 2.0
        else:
            break
        converged = abs(current - new) < 1e-10 * max(1.0, abs(current))
        a, b, current = na, nb, new
        if converged:
            break
    return a, b


def fold_into_head(model: AttributeNet, scale: np.ndarray, shift: np.ndarray) -> None:
    """Apply ``logit -> scale * logit + shift`` inside ``model.head`` (in place).

    Raises:
        ValueError: ``scale`` or ``shift`` does not have one value per output.
    """
    head = model.head
    n = int(head.weight.shape[0])
    for name, v in (("scale", scale), ("shift", shift)):
        if np.asarray(v).shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},), got {np.asarray(v).shape}")
    with torch.no_grad():
        a = torch.as_tensor(np.asarray(scale), dtype=head.weight.dtype,
                            device=head.weight.device)
        b = torch.as_tensor(np.asarray(shift), dtype=head.weight.dtype,
                            device=head.weight.device)
        head.weight.mul_(a[:, None])
        head.bias.mul_(a).add_(b)


def rate_gap(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean over attributes of |mean predicted probability - actual positive rate|."""
    p = np.asarray(probs, dtype=np.float64)
    return float(np.abs(p.mean(0) - np.asarray(labels, dtype=np.float64).mean(0)).mean())


def calibrate_extractor(extractor: Extractor, val_probs: np.ndarray, val_labels: np.ndarray,
                        cols: Sequence[int], *,
                        test_probs: Callable[[], np.ndarray] | None = None,
                        test_labels: np.ndarray | None = None,
                        log: Log | None = None) -> dict[str, Any]:
    """Fit Platt scaling and fold it into ``extractor``'s head, in place.

    Args:
        val_probs: (N, A) the extractor's probabilities on validation images (its order).
        val_labels: (N, len(cols)) 0/1 labels; column i belongs to output ``cols[i]``
            (outputs not in ``cols`` are left as they are).
        test_probs: returns the extractor's (M, A) probabilities on test images; called
            before and after folding to record the held-out rate gaps.
        test_labels: (M, len(cols)) labels of those test images.

    Returns:
        The record for ``config["calibration"]``: method, where it was fitted, the scale and
        shift per calibrated attribute, and ``test_rate_gap_before`` / ``_after``.
    """
    cols = list(cols)
    p = np.asarray(val_probs, dtype=np.float64)[:, cols].clip(1e-7, 1 - 1e-7)
    scale, shift = fit_platt(np.log(p / (1 - p)), val_labels)
    before = test_probs() if test_probs is not None else None
    full_scale = np.ones(len(extractor.attributes))
    full_shift = np.zeros(len(extractor.attributes))
    full_scale[cols], full_shift[cols] = scale, shift
    fold_into_head(extractor.model, full_scale, full_shift)
    names = [extractor.attributes[c] for c in cols]
    record: dict[str, Any] = {
        "method": "platt",
        "fitted_on": "validation partition",
        "images": int(p.shape[0]),
        "scale": {a: round(float(v), 6) for a, v in zip(names, scale, strict=True)},
        "shift": {a: round(float(v), 6) for a, v in zip(names, shift, strict=True)},
    }
    if before is not None and test_probs is not None and test_labels is not None:
        record["test_rate_gap_before"] = rate_gap(before[:, cols], test_labels)
        record["test_rate_gap_after"] = rate_gap(test_probs()[:, cols], test_labels)
        (log or (lambda m: None))(
            f"calibrated on {p.shape[0]} validation images; test partition: mean |predicted "
            f"- actual positive rate| {record['test_rate_gap_before']:.4f} -> "
            f"{record['test_rate_gap_after']:.4f}")
    return record


def calibrate_weights(
    weights: str | os.PathLike[str] | None,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    device: str = "cpu",
    workers: int = 2,
    progress: bool = False,
    log: Log | None = None,
) -> dict[str, Any]:
    """Calibrate an extractor on the validation partition of ``data`` and write the result.

    The new folder has the same network with the calibration folded into its head; its
    ``config.json`` is the source's plus ``calibration`` (parameters, the source's sha256)
    and test metrics recomputed (the source's are kept as ``test_metrics_uncalibrated``).

    Raises:
        ValueError: the data has no validation images or attributes the extractor lacks.
        CelebaError / ArtifactError: bad data or weights.
    """
    say = log or (lambda m: None)
    source = load_extractor(weights, device)
    index = read_celeba(data, report=say)
    if index.partitions is None:
        raise ValueError(f"{index.root} has no list_eval_partition.txt: calibration needs "
                         "the validation partition (1)")
    rows = index.indices("val")
    if rows.size == 0:
        raise ValueError(f"partition 1 (validation) of {index.root} has no images")
    cols = align_attributes(source, index)
    probs, ok = predict_index(source, index, rows, workers=workers, progress=progress)
    calibrated = Extractor(copy.deepcopy(source.model).cpu(), source.attributes,
                           source.normalization, name=Path(out).name, sha256="", device=device,
                           flip_tta=source.flip_tta, tta_zooms=source.tta_zooms)
    test = index.indices("test")
    record = calibrate_extractor(
        calibrated, probs, index.labels[ok], cols,
        test_probs=(lambda: predict_index(calibrated, index, test, workers=workers)[0])
        if test.size else None,
        test_labels=index.labels[test], log=say)
    record["from_sha256"] = source.sha256
    config = {k: v for k, v in source.config.items() if k != "files"}
    config["calibration"] = record
    if test.size:
        if config.get("test_metrics") is not None:
            config["test_metrics_uncalibrated"] = config["test_metrics"]
        config["test_metrics"] = evaluate(calibrated, index, partition="test", workers=workers)
    state = {k: v.detach().cpu().contiguous()
             for k, v in calibrated.model.state_dict().items()}
    with atomic_artifact_dir(out) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE),
                  metadata={"format": "pt", "arch": str(config.get("architecture", ""))})
        return save_config(tmp, config)
