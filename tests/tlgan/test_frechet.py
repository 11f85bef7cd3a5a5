"""The Fréchet distance: exact on known cases, ~0 for identical sets, larger for shifted ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlgan.testing import tiny_extractor
from tlgan.training.frechet import (
    Reference,
    embedding_stats,
    fd_from_embeddings,
    frechet_distance,
)


def _reference_fd(mu1, s1, mu2, s2) -> float:  # type: ignore[no-untyped-def]
    from scipy import linalg

    covmean = linalg.sqrtm(s1 @ s2).real
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_identical_sets_score_zero() -> None:
    x = np.random.default_rng(0).standard_normal((500, 32))
    assert fd_from_embeddings(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fd_from_embeddings(x, x.copy()[::-1]) == pytest.approx(0.0, abs=1e-8)


def test_mean_shift_adds_its_squared_length() -> None:
    x = np.random.default_rng(1).standard_normal((400, 16))
    shift = np.full(16, 0.5)
    assert fd_from_embeddings(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_scaled_and_shifted_sets_score_larger() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((1000, 8)), rng.standard_normal((1000, 8))
    same = fd_from_embeddings(a, b)
    shifted = fd_from_embeddings(a, b + 1.0)
    scaled = fd_from_embeddings(a, 3.0 * b)
    assert same < 0.2
    assert shifted > 10 * same
    assert scaled > 10 * same
    # N(0, I) vs N(0, 9I) in 8 dims: 8 * (1 + 9 - 2 * 3) = 32
    assert scaled == pytest.approx(32.0, rel=0.15)


def test_matches_scipy_sqrtm_and_is_symmetric() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 10)) @ rng.standard_normal((10, 10))
    b = rng.standard_normal((300, 10)) @ rng.standard_normal((10, 10)) + 0.3
    (m1, s1), (m2, s2) = embedding_stats(a), embedding_stats(b)
    fd = frechet_distance(m1, s1, m2, s2)
    assert fd == pytest.approx(_reference_fd(m1, s1, m2, s2), rel=1e-6)
    assert frechet_distance(m2, s2, m1, s1) == pytest.approx(fd, rel=1e-9)


def test_singular_covariances_stay_finite() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((5, 64)), rng.standard_normal((7, 64))  # N < E
    fd = fd_from_embeddings(a, b)
    assert np.isfinite(fd) and fd >= 0.0


def test_bad_inputs_raise_value_error() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        embedding_stats(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        embedding_stats(np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="sigma"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))


def test_reference_floor_and_scores_with_an_extractor() -> None:
    rng = np.random.default_rng(5)
    base = rng.integers(60, 200, size=(64, 64, 64, 3), dtype=np.uint8)
    train, test = base[:40], base[40:]
    ext = tiny_extractor(seed=0)
    ref = Reference(ext, train, test, n=40, device="cpu")
    assert ref.floor is not None and ref.floor > 0
    assert ref.n_ref == 24

    def emb(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        with torch.inference_mode():
            return ext.forward_tensor(x)[1].double().numpy()

    assert ref.score(emb(test)) == pytest.approx(0.0, abs=1e-6)
    brighter = np.clip(test.astype(np.int32) + 50, 0, 255).astype(np.uint8)
    assert ref.score(emb(brighter)) > 5 * ref.floor

    no_test = Reference(ext, train, None, n=16, device="cpu")
    assert no_test.floor is None and no_test.n_ref == 16
