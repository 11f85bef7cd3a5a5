"""Latent-space vector maths for feature axes: normalization, orthogonalization and locking.

Everything here takes numpy arrays and returns new float64 arrays; inputs are never modified.
Shapes are checked and a bad argument raises ``ValueError`` naming it.

Conventions
-----------
* An *axis* is a row vector of length ``L`` (the latent size); a set of axes is ``(K, L)``.
* ``orthogonalize`` is InterFaceGAN's *conditional* manipulation generalized to several
  conditions: every non-reference axis is projected onto the orthogonal complement of the
  span of the reference axes (through an orthonormal SVD basis of that span), then
  renormalized. Unlike TL-GAN's sequential Gram-Schmidt the result does not depend on the
  order of the references.
* ``disentangle_references`` makes the reference axes themselves independent: each one is
  projected off the span of *all the other* references (order-free), so moving along Young
  changes age while holding Male (to first order), and vice versa. ``orthogonalize(...,
  references="mutual")`` applies it; the span of the references, and so every
  non-reference axis, is the same either way.
* ``project_out`` / ``apply_moves`` implement *locking*: a move in z is stripped of any
  component inside the span of the locked axes, so the locked attributes' logits (to first
  order) do not change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "REFERENCE_MODES",
    "apply_moves",
    "cosine_matrix",
    "disentangle_references",
    "normalize",
    "orthogonalize",
    "project_out",
    "span_basis",
]

#: relative norm below which a vector counts as zero / inside a span
DEFAULT_TOL = 1e-6
#: how ``orthogonalize`` treats the reference axes themselves: ``"keep"`` leaves them as
#: given; ``"mutual"`` projects each off the span of the others (``disentangle_references``)
REFERENCE_MODES: tuple[str, ...] = ("keep", "mutual")


def _as_float_array(x: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        arr = np.array(x, dtype=np.float64)  # a copy: callers' arrays are never modified
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _as_matrix(x: ArrayLike, name: str, *, cols: int | None = None,
               allow_empty: bool = False) -> NDArray[np.float64]:
    arr = _as_float_array(x, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (K, L), got shape {arr.shape}")
    if cols is not None and arr.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns (the latent size), got shape "
                         f"{arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column, got shape {arr.shape}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must have at least one row, got shape {arr.shape}")
    return arr


def normalize(v: ArrayLike, *, name: str = "v", tol: float = 1e-12) -> NDArray[np.float64]:
    """Return ``v`` scaled to unit Euclidean norm (a vector ``(L,)``, or every row of ``(N, L)``).

    Raises:
        ValueError: ``v`` is not 1-D/2-D, holds NaN/inf, or a vector/row has norm <= ``tol``.
    """
    arr = _as_float_array(v, name)
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise ValueError(f"{name} must be a vector (L,) or matrix (N, L), got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    bad = np.flatnonzero(norms.reshape(-1) <= tol)
    if bad.size:
        where = "" if arr.ndim == 1 else f" (rows {bad.tolist()[:10]})"
        raise ValueError(f"{name} contains a zero vector{where}; it cannot be normalized")
    out: NDArray[np.float64] = arr / norms
    return out


def span_basis(vectors: ArrayLike, *, name: str = "vectors",
               tol: float = DEFAULT_TOL) -> NDArray[np.float64]:
    """Return an orthonormal basis ``(r, L)`` of the row span of ``vectors`` ``(M, L)``.

    The basis comes from an SVD, so it spans the same space whatever the order or scale of
    the rows; singular values below ``tol`` times the largest one are dropped (rank
    deficiency is allowed). ``M == 0`` gives an empty ``(0, L)`` basis.
    """
    mat = _as_matrix(vectors, name, allow_empty=True)
    if mat.shape[0] == 0:
        return np.zeros((0, mat.shape[1]))
    # scale rows to unit norm first so that a long vector does not hide a short one
    norms = np.linalg.norm(mat, axis=1)
    keep = norms > 1e-12
    if not np.any(keep):
        return np.zeros((0, mat.shape[1]))
    mat = mat[keep] / norms[keep, None]
    _, s, vt = np.linalg.svd(mat, full_matrices=False)
    rank = int(np.sum(s > tol * s[0]))
    basis: NDArray[np.float64] = vt[:rank]
    return basis


def disentangle_references(refs: ArrayLike, *, tol: float = DEFAULT_TOL
                           ) -> NDArray[np.float64]:
    """Make reference axes independent of each other, whatever their order.

    Each row of ``refs`` ``(M, L)`` is projected onto the orthogonal complement of the span
    of all the *other* rows, then normalized: row ``i`` becomes the direction that changes
    reference ``i`` while leaving every other reference's (linear) score unchanged. The
    rows are processed independently, so permuting the input permutes the output. One row
    comes back normalized but otherwise unchanged; together the rows span the same space
    as before.

    Raises:
        ValueError: ``refs`` is not ``(M, L)``, holds NaN/inf or a zero row, or the set is
            rank-deficient (a row lies inside the span of the others; the message names it).
    """
    mat = _as_matrix(refs, "refs")
    unit = normalize(mat, name="refs")
    m = unit.shape[0]
    out = unit.copy()
    for i in range(m):
        others = np.delete(unit, i, axis=0)
        basis = span_basis(others, name="refs", tol=tol)
        resid = unit[i] - (basis.T @ (basis @ unit[i]) if basis.shape[0] else 0.0)
        norm = float(np.linalg.norm(resid))
        if norm < tol or norm < 1e-4:
            raise ValueError(
                f"refs row {i} lies inside the span of the other references (rank-deficient "
                f"set, residual norm {norm:.2e}); drop it or choose other references")
        out[i] = resid / norm
    return out


def orthogonalize(axes: ArrayLike, reference_idx: Sequence[int], *,
                  tol: float = DEFAULT_TOL, references: str = "keep") -> NDArray[np.float64]:
    """Make every non-reference axis orthogonal to the span of the reference axes.

    Args:
        axes: ``(K, L)`` axes (need not be unit length).
        reference_idx: indices of the reference rows (e.g. Male, Young); may be empty.
        tol: an axis whose component outside the reference span is below ``tol`` times its
            norm is considered to lie inside the span.
        references: ``"keep"`` returns the reference rows as given; ``"mutual"`` replaces
            them by ``disentangle_references`` of them (each off the span of the others).

    Returns:
        ``(K, L)`` float64: reference rows as ``references`` says; every other row is
        ``normalize(a - B.T @ (B @ a))`` with ``B`` an orthonormal basis of the reference span,
        so the result does not depend on the order of ``reference_idx``.

    Raises:
        ValueError: bad shapes, an index out of range or repeated, a zero axis, an unknown
            ``references`` mode, a rank-deficient reference set under ``"mutual"``, or a
            non-reference axis that lies (numerically) inside the reference span.
    """
    if references not in REFERENCE_MODES:
        raise ValueError(f"references must be one of {REFERENCE_MODES}, got {references!r}")
    mat = _as_matrix(axes, "axes")
    k = mat.shape[0]
    try:
        refs = [int(i) for i in reference_idx]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"reference_idx must be a sequence of integers: {exc}") from exc
    for i in refs:
        if not -k <= i < k:
            raise ValueError(f"reference_idx {i} is out of range for {k} axes")
    refs = [i % k for i in refs]
    if len(set(refs)) != len(refs):
        raise ValueError(f"reference_idx has repeated entries: {list(reference_idx)}")
    norms = np.linalg.norm(mat, axis=1)
    zero = np.flatnonzero(norms <= 1e-12)
    if zero.size:
        raise ValueError(f"axes has zero rows {zero.tolist()}; they have no direction")
    out = mat.copy()
    if not refs:
        return normalize(out, name="axes")
    basis = span_basis(mat[refs], name="axes[reference_idx]", tol=tol)
    if references == "mutual":
        try:
            out[refs] = disentangle_references(mat[refs], tol=tol)
        except ValueError as exc:
            raise ValueError(f"reference_idx {refs}: {exc}") from None
    others = [i for i in range(k) if i not in set(refs)]
    if not others:
        return out
    sub = mat[others]
    resid = sub - (sub @ basis.T) @ basis
    rel = np.linalg.norm(resid, axis=1) / norms[others]
    inside = [others[j] for j in np.flatnonzero(rel < tol)]
    if inside:
        raise ValueError(
            f"axes rows {inside} lie inside the span of the reference axes {refs}; "
            "they have no direction left after orthogonalization"
        )
    out[others] = resid / np.linalg.norm(resid, axis=1, keepdims=True)
    return out


def project_out(move: ArrayLike, locked: ArrayLike, *,
                tol: float = DEFAULT_TOL) -> NDArray[np.float64]:
    """Project ``move`` (``(L,)`` or ``(N, L)``) onto the orthogonal complement of ``span(locked)``.

    ``locked`` is ``(M, L)``; ``M == 0`` returns ``move`` unchanged (as a float64 copy).
    Locked rows need not be unit length or independent.
    """
    mv = _as_float_array(move, "move")
    if mv.ndim not in (1, 2) or mv.shape[-1] == 0:
        raise ValueError(f"move must be a vector (L,) or matrix (N, L), got shape {mv.shape}")
    lk = _as_matrix(locked, "locked", cols=mv.shape[-1], allow_empty=True)
    if lk.shape[0] == 0:
        return mv
    basis = span_basis(lk, name="locked", tol=tol)
    out: NDArray[np.float64] = mv - (mv @ basis.T) @ basis
    return out


def apply_moves(z: ArrayLike, axes: ArrayLike, distances: ArrayLike,
                locked: ArrayLike | None = None) -> NDArray[np.float64]:
    """Move a latent along several axes at once, then apply locks.

    The total move is ``sum_k distances[k] * normalize(axes[k])`` (a distance is measured in
    z units along the unit axis); it is then projected off ``span(locked)`` and added to
    ``z``. Locking an axis that is also being moved cancels that move.

    Args:
        z: ``(L,)`` latent, or ``(N, L)`` latents that all get the same move.
        axes: ``(K, L)`` axes to move along.
        distances: ``(K,)`` signed distances.
        locked: ``(M, L)`` axes to hold fixed, or None / ``M == 0`` for none.

    Returns:
        the moved latent(s), same shape as ``z``, float64.
    """
    zz = _as_float_array(z, "z")
    if zz.ndim not in (1, 2) or zz.shape[-1] == 0:
        raise ValueError(f"z must be a vector (L,) or matrix (N, L), got shape {zz.shape}")
    latent = zz.shape[-1]
    ax = _as_matrix(axes, "axes", cols=latent, allow_empty=True)
    dist = _as_float_array(distances, "distances")
    if dist.shape != (ax.shape[0],):
        raise ValueError(f"distances must have shape ({ax.shape[0]},) (one per axis), got "
                         f"{dist.shape}")
    move = dist @ normalize(ax, name="axes") if ax.shape[0] else np.zeros(latent)
    if locked is not None:
        move = project_out(move, _as_matrix(locked, "locked", cols=latent, allow_empty=True))
    out: NDArray[np.float64] = zz + move
    return out


def cosine_matrix(axes: ArrayLike) -> NDArray[np.float64]:
    """Return the ``(K, K)`` matrix of cosines between the rows of ``axes`` ``(K, L)``."""
    unit = normalize(_as_matrix(axes, "axes"), name="axes")
    out: NDArray[np.float64] = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(out, 1.0)
    return out
