"""axes.unsupervised: SeFa and GANSpace-style PCA directions, and the evidence helpers."""

from __future__ import annotations

import numpy as np
import pytest

from axes.unsupervised import (
    centred_gram,
    discovery_scores,
    nearest_axes,
    pca_2d,
    pca_directions,
    sefa_directions,
    top_eigen,
    top_moves,
)


def _weight_with_known_svd(seed: int = 0, latent: int = 12, out: int = 40):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(latent, latent)))
    v, _ = np.linalg.qr(rng.normal(size=(out, latent)))
    s = np.linspace(10.0, 1.0, latent)
    return (u * s) @ v.T, u, s


def test_sefa_recovers_top_singular_vectors() -> None:
    w, u, s = _weight_with_known_svd()
    dirs, eig = sefa_directions(w, 4)
    assert dirs.shape == (4, 12)
    np.testing.assert_allclose(eig, s[:4] ** 2, rtol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(dirs * u[:, :4].T, axis=1)), 1.0, atol=1e-10)


def test_sefa_directions_orthonormal_and_signed() -> None:
    w, _, _ = _weight_with_known_svd(1)
    dirs, _ = sefa_directions(w, 6)
    np.testing.assert_allclose(dirs @ dirs.T, np.eye(6), atol=1e-10)
    big = np.abs(dirs).argmax(axis=1)
    assert (dirs[np.arange(6), big] > 0).all()
    again, _ = sefa_directions(-w, 6)  # the sign convention makes results deterministic
    np.testing.assert_allclose(again, dirs, atol=1e-10)


@pytest.mark.parametrize("k", [0, -1, 13, 2.5, True])
def test_bad_k_names_k(k: object) -> None:
    w, _, _ = _weight_with_known_svd()
    with pytest.raises(ValueError, match=r"^k:"):
        sefa_directions(w, k)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^k:"):
        act = np.ones((5, 3)) * np.arange(5)[:, None]
        pca_directions(act, np.ones((5, 12)), k)  # type: ignore[arg-type]


def test_bad_arrays_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^weight:"):
        sefa_directions(np.ones(5), 1)
    with pytest.raises(ValueError, match=r"^weight:"):
        sefa_directions(np.full((3, 3), np.nan), 1)
    with pytest.raises(ValueError, match=r"^latents:"):
        pca_directions(np.ones((5, 3)), np.ones((4, 2)), 1)


def test_pca_recovers_a_planted_latent_direction() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 8))
    planted = np.zeros(8)
    planted[3] = 1.0
    mix = rng.normal(size=(8, 30)) * 0.1
    act = np.tanh(z @ mix) + 5.0 * np.outer(z[:, 3], rng.normal(size=30))
    dirs, explained = pca_directions(act, z, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0)
    assert abs(dirs[0] @ planted) > 0.99
    assert explained[0] > 0.8 and (np.diff(explained) <= 0).all()


def test_top_moves_nearest_and_scores() -> None:
    moves = top_moves(np.array([0.1, -0.5, 0.3]), ["a", "b", "c"], 2)
    assert moves == {"b": -0.5, "c": 0.3}
    near = nearest_axes(np.eye(3)[:2], np.array([[0, -1.0, 0], [1, 1, 0]]), ["x", "y"])
    assert near[0] == {"name": "y", "cosine": pytest.approx(0.7071, abs=1e-4)}
    assert near[1] == {"name": "x", "cosine": -1.0}
    assert nearest_axes(np.eye(3)[:2], np.zeros((0, 3)), []) == [None, None]
    sc = discovery_scores(np.array([[0.5, 0.1], [0.05, -0.1], [-0.3, 0.0]]), near)
    assert sc["strong"] == 2 and sc["distinct_top"] == 1
    assert sc["mean_top_dp"] == pytest.approx(0.3)
    assert sc["mean_nearest_cosine"] == pytest.approx((0.7071 + 1.0) / 2)


def test_pca_2d() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 5)) * np.array([5, 3, 1, 1, 1])
    xy, ratio = pca_2d(z)
    assert xy.shape == (200, 2) and ratio[0] > ratio[1] > 0
    with pytest.raises(ValueError, match=r"^latents:"):
        pca_2d(np.ones((1, 5)))


def _svd_pca(act: np.ndarray, z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The previous implementation (a float64 SVD of the centred activations): the
    reference the Gram route must agree with."""
    act = act - act.mean(axis=0)
    u, s, _ = np.linalg.svd(act, full_matrices=False)
    coords = u[:, :k] * np.sqrt(len(act) - 1)
    coef, *_ = np.linalg.lstsq(coords, z - z.mean(axis=0), rcond=None)
    coef /= np.linalg.norm(coef, axis=1, keepdims=True)
    return coef, (s[:k] ** 2) / (s ** 2).sum()


def test_pca_matches_the_svd_of_the_activations() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 10))
    act = np.maximum(z @ rng.normal(size=(10, 700)) + rng.normal(size=(300, 700)), 0)
    act = act.astype(np.float32) + 3.0  # an offset the centring must remove
    dirs, explained = pca_directions(act, z, 4)
    ref, ref_explained = _svd_pca(act.astype(np.float64), z, 4)
    np.testing.assert_allclose(np.abs((dirs * ref).sum(axis=1)), 1.0, atol=1e-6)
    np.testing.assert_allclose(explained, ref_explained, rtol=1e-5)


def test_centred_gram_in_blocks_and_its_stop() -> None:
    rng = np.random.default_rng(2)
    act = rng.normal(size=(50, 70)).astype(np.float32) + 10.0
    centred = act.astype(np.float64) - act.astype(np.float64).mean(axis=0)
    blocks: list[int] = []
    gram = centred_gram(act, block=16, on_block=lambda: blocks.append(1))
    np.testing.assert_allclose(gram, centred @ centred.T, rtol=1e-5, atol=1e-3)
    assert len(blocks) == 5  # 70 columns in blocks of 16
    assert act.min() > 5.0  # read, not centred in place

    class Halt(Exception):
        pass

    def halt_at_two() -> None:
        blocks.append(1)
        if len(blocks) == 7:
            raise Halt

    with pytest.raises(Halt):
        centred_gram(act, block=16, on_block=halt_at_two)
    assert len(blocks) == 7  # stopped after its second block
    act[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"^activations:"):
        centred_gram(act)


def test_top_eigen_agrees_with_eigh() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 400)) * np.linspace(3, 0.1, 400)
    gram = x @ x.T
    values, vectors = top_eigen(gram, 5)
    ref_values, ref_vectors = np.linalg.eigh(gram)
    np.testing.assert_allclose(values, ref_values[::-1][:5], rtol=1e-9)
    np.testing.assert_allclose(np.abs((vectors * ref_vectors[:, ::-1][:, :5]).sum(axis=0)),
                               1.0, atol=1e-8)
    with pytest.raises(RuntimeError, match="no convergence"):
        top_eigen(gram, 5, max_iter=1, tol=0.0)
