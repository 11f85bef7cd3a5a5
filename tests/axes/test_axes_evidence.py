"""axes.evidence: the method comparison behind axes.fitting's default."""

from __future__ import annotations

import pytest

from axes.evidence import compare_methods


def test_compare_methods_supports_the_default() -> None:
    """A small version of the documented evidence: the GLM beats binarized logit on rare
    attributes and OLS-on-clipped-logits on saturated float32 probabilities."""
    rows = compare_methods(n=3000, latent_size=30, n_attributes=4,
                           scenarios=["rare", "saturated-float32"])
    cos = {(r["scenario"], r["method"]): r["cosine_mean"] for r in rows}
    assert len(rows) == 6
    assert cos["rare", "glm-binomial"] > cos["rare", "logit-binary"] + 0.02
    assert cos["saturated-float32", "glm-binomial"] > cos["saturated-float32", "linear-logit"]
    assert all(r["cosine_mean"] > 0.8 for r in rows)
    with pytest.raises(ValueError, match="scenarios entry"):
        compare_methods(scenarios=["nope"])
