"""Per-attribute metrics of an extractor on a CelebA-format directory.

The report (the JSON of ``tlgan extractor eval --json``) is::

    {"attributes": {name: {"accuracy", "baseline_accuracy", "balanced_accuracy", "auc",
                           "positives"}},
     "mean_accuracy", "mean_baseline_accuracy", "mean_balanced_accuracy", "mean_auc",
     "images", "weights"}

Predictions are thresholded at 0.5. ``baseline_accuracy`` is the majority-class rate.
Attributes with a single class in the evaluated images have ``auc`` null and are left out
of all four means (:func:`single_class_attributes` names them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from feature_extractor.celeba_images import iter_image_batches
from feature_extractor.celeba_index import CelebaIndex, Report, read_celeba
from tlgan_base.classifier_metrics import roc_auc
from tlgan_base.progress import progress_bar

if TYPE_CHECKING:  # pragma: no cover
    from feature_extractor.model import Extractor

REPORT_KEYS = ("attributes", "mean_accuracy", "mean_baseline_accuracy",
               "mean_balanced_accuracy", "mean_auc", "images", "weights")
ATTRIBUTE_KEYS = ("accuracy", "baseline_accuracy", "balanced_accuracy", "auc", "positives")


def compute_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    attributes: Sequence[str],
    *,
    weights: str = "",
    threshold: float = 0.5,
) -> dict[str, Any]:
    """The evaluation report for (N, A) 0/1 ``labels`` and (N, A) probabilities."""
    labels = np.asarray(labels).astype(bool)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.shape != probs.shape or labels.ndim != 2 or labels.shape[1] != len(attributes):
        raise ValueError(
            f"labels {labels.shape} and probabilities {probs.shape} must both be "
            f"(N, {len(attributes)})"
        )
    n = labels.shape[0]
    pred = probs >= threshold
    per: dict[str, dict[str, Any]] = {}
    for a, name in enumerate(attributes):
        y, p, s = labels[:, a], pred[:, a], probs[:, a]
        pos = int(y.sum())
        acc = float((y == p).mean()) if n else None
        base = max(pos, n - pos) / n if n else None
        recalls = []
        if pos:
            recalls.append(float(p[y].mean()))
        if n - pos:
            recalls.append(float((~p[~y]).mean()))
        per[name] = {
            "accuracy": acc,
            "baseline_accuracy": base,
            "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
            "auc": roc_auc(y, s),
            "positives": pos,
        }
    both = [v for v in per.values() if v["auc"] is not None]

    def mean(key: str) -> float | None:
        vals = [v[key] for v in both]
        return float(np.mean(vals)) if vals else None

    return {
        "attributes": per,
        "mean_accuracy": mean("accuracy"),
        "mean_baseline_accuracy": mean("baseline_accuracy"),
        "mean_balanced_accuracy": mean("balanced_accuracy"),
        "mean_auc": mean("auc"),
        "images": int(n),
        "weights": weights,
    }


def single_class_attributes(report: dict[str, Any]) -> list[str]:
    """Attributes with a single class in the evaluated images (auc null, not in the means)."""
    return [k for k, v in report["attributes"].items() if v["auc"] is None]


def predict_index(
    extractor: Extractor,
    index: CelebaIndex,
    rows: np.ndarray,
    *,
    batch_size: int = 256,
    workers: int = 2,
    skip_bad: bool = False,
    report: Report | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities for ``rows`` of ``index``: ``(probs (n, A), rows actually read)``."""
    out_p: list[np.ndarray] = []
    out_r: list[np.ndarray] = []
    it = iter_image_batches(index, rows, batch_size, extractor.input_size, workers=workers,
                            skip_bad=skip_bad, report=report)
    bar = None
    if progress:
        bar = progress_bar(total=len(rows), desc="eval", unit="img", leave=False)
    for imgs, ok in it:
        out_p.append(extractor.predict(imgs, batch_size=batch_size))
        out_r.append(ok)
        if bar is not None:
            bar.update(len(imgs))
    if bar is not None:
        bar.close()
    if not out_p:
        return np.zeros((0, len(extractor.attributes)), np.float32), np.zeros(0, np.int64)
    return np.concatenate(out_p), np.concatenate(out_r)


def align_attributes(extractor: Extractor, index: CelebaIndex) -> list[int]:
    """Column of each data attribute in the extractor's output.

    Raises:
        ValueError: the data has attributes the extractor does not predict.
    """
    missing = [a for a in index.attributes if a not in extractor.attributes]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(
            f"the data in {index.root} has attributes the extractor {extractor.name!r} does "
            f"not predict: {shown}"
        )
    return [extractor.attributes.index(a) for a in index.attributes]


def evaluate(
    extractor: Extractor,
    data: str | os.PathLike[str] | CelebaIndex,
    *,
    partition: str = "test",
    batch_size: int = 256,
    workers: int = 2,
    skip_bad: bool = False,
    report: Report | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate ``extractor`` on a CelebA-format directory (or an already-read index).

    Args:
        partition: "test" (partition 2), "val", "train" or "all". Without a partition
            file every image is evaluated (a note goes to ``report``).
        skip_bad: skip (and report) bad rows/images instead of raising.

    Returns:
        The report (see the module docstring); ``weights`` is the extractor's name.
    """
    notes = report or (lambda m: None)
    if partition not in ("test", "val", "train", "all"):
        raise ValueError(f"partition must be test, val, train or all, got {partition!r}")
    index = data if isinstance(data, CelebaIndex) else read_celeba(
        data, skip_bad=skip_bad, report=report)
    cols = align_attributes(extractor, index)
    if partition != "all" and index.partitions is None:
        notes(f"note: {index.root} has no partition file; evaluating all {len(index)} images")
        partition = "all"
    rows = index.indices(partition)
    if rows.size == 0:
        raise ValueError(f"partition {partition!r} of {index.root} has no images")
    probs, ok = predict_index(extractor, index, rows, batch_size=batch_size, workers=workers,
                              skip_bad=skip_bad, report=report, progress=progress)
    result = compute_metrics(index.labels[ok], probs[:, cols], index.attributes,
                             weights=extractor.name)
    single = single_class_attributes(result)
    if single:
        notes("note: single class in the evaluated images (auc null, excluded from means): "
              + ", ".join(single))
    return result
