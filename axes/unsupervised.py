"""Unsupervised directions in a latent space: the maths, arrays in and out.

Two ways to find directions that change a generated face a lot, without labels:

* :func:`sefa_directions` (SeFa, Shen & Zhou 2021): the first layer acting on the latent is
  linear, ``h = z @ W`` with ``W`` (L, D); a unit move ``n`` changes ``h`` by ``|n @ W|``,
  largest for the top eigenvectors of ``W @ W.T`` (L, L), i.e. the top left singular vectors
  of ``W``. Closed form, no sampling.
* :func:`pca_directions` (GANSpace, Härkönen et al. 2020): principal components of an
  intermediate activation of sampled latents, carried back to the latent space by
  regressing the latents on the components' coordinates.

Plus the small helpers the evidence needs: the attributes a direction moves most
(:func:`top_moves`), the nearest named axis (:func:`nearest_axes`), summary figures to
compare methods (:func:`discovery_scores`) and a 2-D map of latents (:func:`pca_2d`).
Every direction comes out unit length with a fixed sign (its largest-magnitude component
positive), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

__all__ = ["GRAM_BLOCK", "MAX_K", "centred_gram", "discovery_scores", "nearest_axes", "pca_2d",
           "pca_directions", "sefa_directions", "top_eigen", "top_moves"]

#: the most directions any method returns at once
MAX_K = 64
#: activations (columns, and rows for the mean) per block of the Gram product: the memory of
#: one block and the granularity of stops
GRAM_BLOCK = 2048


def _matrix(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name}: expected a non-empty 2-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr


def _check_k(k: int, most: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= most:
        raise ValueError(f"k: must be an integer in 1..{most}, got {k!r}")


def _fix_signs(directions: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit rows, each with its largest-magnitude component positive."""
    norms = np.linalg.norm(directions, axis=1, keepdims=True)
    out = directions / np.maximum(norms, 1e-300)
    big = np.abs(out).argmax(axis=1)
    signs = np.sign(out[np.arange(len(out)), big])
    signs[signs == 0] = 1.0
    return np.asarray(out * signs[:, None])


def sefa_directions(weight: ArrayLike, k: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """SeFa: the ``k`` latent directions the linear first layer amplifies most.

    Args:
        weight: ``(L, D)``: the first layer computes ``z @ weight`` from a latent ``z`` (L,)
            (for a ConvTranspose2d on a 1x1 input: its weight reshaped to (L, C*kh*kw); for
            a Linear layer: its weight transposed).
        k: how many directions, ``1 <= k <= min(L, D, MAX_K)``.

    Returns:
        ``directions`` (k, L), orthonormal rows, and ``eigenvalues`` (k,) of
        ``weight @ weight.T`` (the squared gain ``|n @ weight|^2`` of each), descending.
    """
    w = _matrix(weight, "weight")
    _check_k(k, min(*w.shape, MAX_K))
    u, s, _ = np.linalg.svd(w, full_matrices=False)
    return _fix_signs(u[:, :k].T.copy()), (s[:k] ** 2).astype(np.float64)


def centred_gram(activations: NDArray[np.floating[Any]], *, block: int = GRAM_BLOCK,
                 on_block: Callable[[], None] | None = None) -> NDArray[np.float64]:
    """The Gram matrix ``(N, N)`` of the activations' centred rows, ``sum_c B_c B_c^T`` over
    blocks ``B_c`` of ``block`` centred columns (float32 products, float64 sum).

    The activations are read, never copied whole: the memory is one centred block
    (N x block float32) and the result. ``on_block()`` is called after every block (a caller
    stops the work by raising from it). ValueError naming ``activations`` on NaN or
    infinity.
    """
    if activations.ndim != 2 or 0 in activations.shape:
        raise ValueError(f"activations: expected a non-empty 2-D array, got shape "
                         f"{activations.shape}")
    n, d = activations.shape
    mean = np.zeros(d, dtype=np.float64)
    for start in range(0, n, block):
        part = activations[start:start + block]
        if not np.isfinite(part).all():
            raise ValueError("activations: contains NaN or infinity")
        mean += part.sum(axis=0, dtype=np.float64)
    mean32 = (mean / n).astype(np.float32)
    gram = np.zeros((n, n), dtype=np.float64)
    for start in range(0, d, block):
        cols = slice(start, start + block)
        centred = np.subtract(activations[:, cols], mean32[cols], dtype=np.float32)
        gram += centred @ centred.T  # BLAS syrk: the product of a matrix with its transpose
        if on_block is not None:
            on_block()
    return gram


def top_eigen(gram: NDArray[np.float64], k: int, *, seed: int = 0, tol: float = 1e-10,
              max_iter: int = 2000, on_iter: Callable[[], None] | None = None
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The ``k`` largest eigenvalues (k,) and their unit eigenvectors (N, k) of a symmetric
    positive semi-definite ``gram`` (N, N), by seeded subspace iteration with Rayleigh-Ritz
    on ``min(N, 2k + 10)`` vectors: the same values as a full ``eigh`` (to ``tol`` relative
    to the largest eigenvalue, on the residual ``|G v - lambda v|``) at a fraction of its
    cost for a few components. ``on_iter()`` is called after every iteration.
    RuntimeError when it does not converge in ``max_iter`` iterations."""
    with threadpool_limits(1):  # small products: BLAS threads only contend (10x slower)
        return _subspace_iteration(gram, k, seed, tol, max_iter, on_iter)


def _subspace_iteration(gram: NDArray[np.float64], k: int, seed: int, tol: float,
                        max_iter: int, on_iter: Callable[[], None] | None
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n = len(gram)
    m = min(n, 2 * k + 10)
    q = np.linalg.qr(gram @ np.random.default_rng(seed).standard_normal((n, m)))[0]
    resid = np.zeros(1)
    for _ in range(max_iter):
        y = gram @ q
        small = q.T @ y
        values, vectors = np.linalg.eigh((small + small.T) / 2)
        order = np.argsort(values)[::-1][:k]
        values, vectors = values[order], vectors[:, order]
        ritz = q @ vectors
        resid = np.linalg.norm(y @ vectors - ritz * values, axis=0)
        if on_iter is not None:
            on_iter()
        if m == n or resid.max() <= tol * max(float(values[0]), 1e-300):
            return np.maximum(values, 0.0), ritz
        q = np.linalg.qr(y)[0]
    raise RuntimeError(f"top_eigen: no convergence in {max_iter} iterations "
                       f"(residual {resid.max():.3g})")


def pca_directions(activations: ArrayLike, latents: ArrayLike, k: int, *,
                   on_block: Callable[[], None] | None = None
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """GANSpace: principal components of activations, carried back to the latent space.

    The activations (N, D) of N sampled latents (N, L) are centred and their top ``k``
    principal components found; each latent's coordinates on them, standardised, are the
    regressors of a least-squares fit of the centred latents, so direction ``i`` is the
    latent move that goes with one standard deviation along component ``i`` (then made unit
    length). Directions are not orthogonalized.

    The components come from the (N, N) Gram matrix of the centred activations
    (:func:`centred_gram`, float32 products in column blocks) and its top eigenvectors
    (:func:`top_eigen`): the left singular vectors of the centred activations, without an
    SVD of the (N, D) matrix and without a copy of the activations.

    Args:
        activations: ``(N, D)`` intermediate activations (flattened), N >= 2.
        latents: ``(N, L)`` the latents they came from.
        k: how many directions, ``1 <= k <= min(N - 1, D, L, MAX_K)``.
        on_block: called after each block of work (a caller stops it by raising).

    Returns:
        ``directions`` (k, L) unit rows and ``explained`` (k,): the fraction of the
        activations' variance along each component, descending.
    """
    act = np.asarray(activations)
    if act.ndim != 2 or 0 in act.shape:
        raise ValueError(f"activations: expected a non-empty 2-D array, got shape {act.shape}")
    z = _matrix(latents, "latents")
    if len(act) != len(z):
        raise ValueError(f"latents: expected {len(act)} rows (one per activation), got {len(z)}")
    if len(act) < 2:
        raise ValueError("activations: need at least 2 samples")
    _check_k(k, min(len(act) - 1, act.shape[1], z.shape[1], MAX_K))
    gram = centred_gram(act, on_block=on_block)
    values, vectors = top_eigen(gram, k, on_iter=on_block)
    total = float(np.trace(gram))
    explained = values / total if total > 0 else np.zeros(k)
    coords = vectors * np.sqrt(len(act) - 1)  # unit-variance coordinates
    coef, *_ = np.linalg.lstsq(coords, z - z.mean(axis=0), rcond=None)
    return _fix_signs(coef), np.asarray(explained, dtype=np.float64)


def top_moves(delta: ArrayLike, attributes: Sequence[str], top: int = 5) -> dict[str, float]:
    """The ``top`` attributes with the largest |change| in ``delta`` (A,), signed, largest
    first, rounded to 4 places."""
    d = np.asarray(delta, dtype=np.float64)
    if d.ndim != 1 or len(d) != len(attributes):
        raise ValueError(f"delta: expected shape ({len(attributes)},), got {d.shape}")
    if top < 1:
        raise ValueError(f"top: must be >= 1, got {top}")
    order = np.argsort(-np.abs(d), kind="stable")[:top]
    return {str(attributes[i]): round(float(d[i]), 4) for i in order}


def nearest_axes(directions: ArrayLike, axes: ArrayLike, names: Sequence[str]
                 ) -> list[dict[str, Any] | None]:
    """For each direction (K, L), the named axis (M, L) with the largest |cosine|:
    ``{"name", "cosine"}`` (signed cosine); an empty list of axes gives None entries."""
    d = _matrix(directions, "directions")
    a = np.asarray(axes, dtype=np.float64)
    if a.size == 0:
        return [None for _ in range(len(d))]
    a = _matrix(a, "axes")
    if a.shape[1] != d.shape[1] or len(names) != len(a):
        raise ValueError(f"axes: expected ({len(names)}, {d.shape[1]}), got {a.shape}")
    cos = (d / np.linalg.norm(d, axis=1, keepdims=True)) @ (
        a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-300)).T
    best = np.abs(cos).argmax(axis=1)
    out: list[dict[str, Any] | None] = [
        {"name": str(names[j]), "cosine": round(float(cos[i, j]), 4)}
        for i, j in enumerate(best)]
    return out


def discovery_scores(moves: ArrayLike, nearest: Sequence[dict[str, Any] | None] = (),
                     threshold: float = 0.2) -> dict[str, float]:
    """Figures to compare sets of directions: ``moves`` (K, A) is each direction's mean
    probability change per attribute.

    Returns ``k``, ``strong`` (directions moving some attribute by >= ``threshold``),
    ``mean_top_dp`` (mean over directions of the largest |dP|), ``distinct_top`` (distinct
    top attributes among the strong directions) and ``mean_nearest_cosine`` (mean |cosine|
    to the nearest named axis, when given).
    """
    m = _matrix(moves, "moves")
    top = np.abs(m).max(axis=1)
    strong = top >= threshold
    out = {"k": float(len(m)), "strong": float(strong.sum()), "mean_top_dp": float(top.mean()),
           "distinct_top": float(len(set(np.abs(m).argmax(axis=1)[strong].tolist())))}
    cos = [abs(float(n["cosine"])) for n in nearest if n is not None]
    if cos:
        out["mean_nearest_cosine"] = float(np.mean(cos))
    return out


def pca_2d(latents: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The latents (N, L), N >= 2, projected on their top two principal components:
    ``coords`` (N, 2) and the fraction of variance each component explains (2,)."""
    z = _matrix(latents, "latents")
    if len(z) < 2 or z.shape[1] < 2:
        raise ValueError(f"latents: need at least 2 rows and 2 columns, got {z.shape}")
    zc = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(zc, full_matrices=False)
    vt = _fix_signs(vt[:2])
    total = float((s ** 2).sum())
    ratio = (s[:2] ** 2) / total if total > 0 else np.zeros(2)
    return zc @ vt.T, np.asarray(ratio, dtype=np.float64)
