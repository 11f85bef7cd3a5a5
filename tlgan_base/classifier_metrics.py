"""Metrics shared by the layers that fit and judge models (``axes``, ``feature_extractor``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["roc_auc"]


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float | None:
    """ROC-AUC of binary ``labels`` (0/1) against ``scores``; None with a single class.

    Ties get half credit (the Mann-Whitney statistic, as ``sklearn.metrics.roc_auc_score``).

    Raises:
        ValueError: ``scores`` and ``labels`` differ in length.
    """
    lab = np.asarray(labels).astype(bool).reshape(-1)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    if lab.shape != sc.shape:
        raise ValueError(f"scores must have the same length as labels, got {sc.shape} vs "
                         f"{lab.shape}")
    pos = int(lab.sum())
    neg = lab.size - pos
    if pos == 0 or neg == 0:
        return None
    _, inv, counts = np.unique(sc, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank of each value
    r = avg_rank[inv.reshape(-1)]
    return float((r[lab].sum() - pos * (pos + 1) / 2.0) / (pos * neg))
