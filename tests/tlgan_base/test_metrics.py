"""tlgan_base.classifier_metrics: the one ROC-AUC of the axes and the extractor."""

from __future__ import annotations

from tlgan_base.classifier_metrics import roc_auc


def test_roc_auc() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert roc_auc([1, 1], [0.1, 0.2]) is None
