"""axes.maths: normalization, order-free orthogonalization, locking, moves."""

from __future__ import annotations

import numpy as np
import pytest

from axes.maths import (
    apply_moves,
    cosine_matrix,
    disentangle_references,
    normalize,
    orthogonalize,
    project_out,
    span_basis,
)

L = 16


@pytest.fixture
def axes6() -> np.ndarray:
    rng = np.random.default_rng(1)
    a = normalize(rng.standard_normal((6, L)))
    a[1] = normalize(a[1] + 0.8 * a[0])  # correlated references (like Male/Young)
    a[2] = normalize(a[2] + 0.5 * a[0] - 0.7 * a[1])
    return a


def test_normalize_rows_and_vector() -> None:
    v = np.array([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(normalize(v), [[0.6, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(normalize(np.array([0.0, -5.0])), [0.0, -1.0])
    assert v[0, 0] == 3.0  # input untouched


def test_normalize_zero_vector_raises() -> None:
    with pytest.raises(ValueError, match=r"v contains a zero vector \(rows \[1\]\)"):
        normalize(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="v must be a vector"):
        normalize(np.zeros((2, 2, 2)))


def test_orthogonalize_references_unchanged(axes6: np.ndarray) -> None:
    out = orthogonalize(axes6, [0, 1])
    np.testing.assert_array_equal(out[[0, 1]], axes6[[0, 1]])


def test_orthogonalize_removes_reference_components_and_renormalizes(axes6: np.ndarray) -> None:
    out = orthogonalize(axes6, [0, 1])
    np.testing.assert_allclose(out[2:] @ axes6[[0, 1]].T, 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-12)
    # the component outside the span is kept (same direction as the plain residual)
    basis = np.linalg.qr(axes6[[0, 1]].T)[0].T
    resid = axes6[2] - basis.T @ (basis @ axes6[2])
    np.testing.assert_allclose(out[2], resid / np.linalg.norm(resid), atol=1e-12)


def test_orthogonalize_is_order_free(axes6: np.ndarray) -> None:
    a = orthogonalize(axes6, [0, 1, 2])
    b = orthogonalize(axes6, [2, 0, 1])
    np.testing.assert_allclose(a, b, atol=1e-12)
    # moving the reference rows around does not matter either
    perm = np.array([2, 1, 0, 3, 4, 5])
    c = orthogonalize(axes6[perm], [0, 1, 2])[np.argsort(perm)]
    np.testing.assert_allclose(a, c, atol=1e-12)


def test_orthogonalize_differs_from_sequential_projection(axes6: np.ndarray) -> None:
    """Projecting off one correlated reference after another (no joint basis) leaves a
    component along the first reference; the span projection does not."""
    seq = axes6[3].copy()
    for r in (0, 1):
        seq = seq - (seq @ axes6[r]) * axes6[r]
    assert abs(seq @ axes6[0]) > 1e-3
    out = orthogonalize(axes6, [0, 1])
    assert abs(out[3] @ axes6[0]) < 1e-12


def test_orthogonalize_no_references_just_normalizes() -> None:
    a = np.array([[2.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(orthogonalize(a, []), normalize(a))


def test_orthogonalize_axis_inside_span_raises(axes6: np.ndarray) -> None:
    bad = axes6.copy()
    bad[4] = 0.3 * axes6[0] - 2.0 * axes6[1]
    with pytest.raises(ValueError, match=r"axes rows \[4\] lie inside the span"):
        orthogonalize(bad, [0, 1])


def test_orthogonalize_bad_arguments(axes6: np.ndarray) -> None:
    with pytest.raises(ValueError, match="reference_idx 9 is out of range"):
        orthogonalize(axes6, [9])
    with pytest.raises(ValueError, match="reference_idx has repeated"):
        orthogonalize(axes6, [1, 1])
    with pytest.raises(ValueError, match="axes must be a 2-D array"):
        orthogonalize(axes6[0], [0])
    z = axes6.copy()
    z[3] = 0
    with pytest.raises(ValueError, match=r"axes has zero rows \[3\]"):
        orthogonalize(z, [0])


def test_span_basis_rank_deficient() -> None:
    v = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    b = span_basis(v)
    assert b.shape == (2, 3)
    np.testing.assert_allclose(b @ b.T, np.eye(2), atol=1e-12)
    assert span_basis(np.zeros((0, 3))).shape == (0, 3)


def test_project_out_removes_locked_span(axes6: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    move = rng.standard_normal(L)
    locked = axes6[[0, 1]] * np.array([[3.0], [0.5]])  # scale does not matter
    out = project_out(move, locked)
    np.testing.assert_allclose(out @ axes6[[0, 1]].T, 0.0, atol=1e-12)
    np.testing.assert_allclose(project_out(out, locked), out, atol=1e-12)  # idempotent
    many = rng.standard_normal((5, L))
    outs = project_out(many, locked)
    assert outs.shape == (5, L)
    np.testing.assert_allclose(outs[2], project_out(many[2], locked), atol=1e-12)


def test_project_out_no_locks_unchanged() -> None:
    move = np.arange(4.0)
    out = project_out(move, np.zeros((0, 4)))
    np.testing.assert_array_equal(out, move)
    out[0] = 99.0
    assert move[0] == 0.0  # a copy


def test_project_out_bad_shapes() -> None:
    with pytest.raises(ValueError, match="locked must have 4 columns"):
        project_out(np.zeros(4), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="move must be a vector"):
        project_out(np.zeros((1, 1, 4)), np.zeros((1, 4)))


def test_apply_moves_adds_then_locks(axes6: np.ndarray) -> None:
    z = np.random.default_rng(3).standard_normal(L)
    axes = axes6[[2, 3]] * 5.0  # not unit: distances are along the unit axes
    d = np.array([1.5, -0.7])
    free = apply_moves(z, axes, d)
    np.testing.assert_allclose(free - z, 1.5 * axes6[2] - 0.7 * axes6[3], atol=1e-12)
    locked = axes6[[0, 1]]
    out = apply_moves(z, axes, d, locked)
    expected = z + project_out(1.5 * axes6[2] - 0.7 * axes6[3], locked)
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_allclose((out - z) @ locked.T, 0.0, atol=1e-12)
    # locked attributes' coordinates stay where they were
    np.testing.assert_allclose(out @ locked.T, z @ locked.T, atol=1e-12)


def test_apply_moves_along_locked_axis_cancels(axes6: np.ndarray) -> None:
    z = np.zeros(L)
    out = apply_moves(z, axes6[[0]], np.array([2.0]), axes6[[0]])
    np.testing.assert_allclose(out, z, atol=1e-12)


def test_apply_moves_batch_and_empty(axes6: np.ndarray) -> None:
    zs = np.random.default_rng(4).standard_normal((3, L))
    out = apply_moves(zs, axes6[[2]], np.array([1.0]))
    np.testing.assert_allclose(out - zs, np.tile(axes6[2], (3, 1)), atol=1e-12)
    np.testing.assert_array_equal(apply_moves(zs, np.zeros((0, L)), np.zeros(0)), zs)


def test_apply_moves_bad_shapes(axes6: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"distances must have shape \(2,\)"):
        apply_moves(np.zeros(L), axes6[:2], np.zeros(3))
    with pytest.raises(ValueError, match="axes must have 16 columns"):
        apply_moves(np.zeros(L), np.zeros((2, 8)), np.zeros(2))
    with pytest.raises(ValueError, match="z must be a vector"):
        apply_moves(np.zeros((1, 1, L)), axes6[:2], np.zeros(2))
    with pytest.raises(ValueError, match="locked must have 16 columns"):
        apply_moves(np.zeros(L), axes6[:2], np.zeros(2), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="z contains NaN"):
        apply_moves(np.full(L, np.nan), axes6[:2], np.zeros(2))


def test_cosine_matrix(axes6: np.ndarray) -> None:
    c = cosine_matrix(axes6 * 3.0)
    assert c.shape == (6, 6)
    np.testing.assert_allclose(c, c.T)
    np.testing.assert_allclose(np.diag(c), 1.0)
    np.testing.assert_allclose(c[0, 1], axes6[0] @ axes6[1], atol=1e-12)
    o = orthogonalize(axes6, [0, 1])
    np.testing.assert_allclose(cosine_matrix(o)[2:, :2], 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="axes must be a 2-D array"):
        cosine_matrix(np.zeros(3))


# ------------------------------------------------------------- disentangled references
def test_disentangle_references_each_off_the_others(axes6: np.ndarray) -> None:
    refs = axes6[:3]
    out = disentangle_references(refs)
    assert out.shape == (3, L)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-12)
    for i in range(3):
        for j in range(3):
            if i != j:
                assert abs(float(out[i] @ refs[j])) < 1e-10
        assert float(out[i] @ refs[i]) > 0  # still points the same way
    # same span: projecting the originals onto the new rows' span loses nothing
    basis = span_basis(out)
    np.testing.assert_allclose(refs - (refs @ basis.T) @ basis, 0, atol=1e-10)


def test_disentangle_references_is_order_free(axes6: np.ndarray) -> None:
    refs = axes6[:3]
    perm = [2, 0, 1]
    np.testing.assert_allclose(disentangle_references(refs[perm]),
                               disentangle_references(refs)[perm], atol=1e-12)


def test_disentangle_one_reference_is_unchanged(axes6: np.ndarray) -> None:
    np.testing.assert_allclose(disentangle_references(axes6[:1]), axes6[:1], atol=1e-12)
    np.testing.assert_allclose(disentangle_references(3.0 * axes6[:1]), axes6[:1], atol=1e-12)


def test_disentangle_rank_deficient_set_raises(axes6: np.ndarray) -> None:
    refs = np.vstack([axes6[:2], normalize(axes6[0] - 2 * axes6[1])])
    with pytest.raises(ValueError, match="refs row 0 lies inside the span of the other"):
        disentangle_references(refs)
    with pytest.raises(ValueError, match="refs must be a 2-D array"):
        disentangle_references(axes6[0])


def test_orthogonalize_mutual_references(axes6: np.ndarray) -> None:
    keep = orthogonalize(axes6, [0, 1])
    mutual = orthogonalize(axes6, [0, 1], references="mutual")
    np.testing.assert_allclose(mutual[:2], disentangle_references(axes6[:2]), atol=1e-12)
    np.testing.assert_allclose(mutual[2:], keep[2:], atol=1e-12)
    np.testing.assert_allclose(orthogonalize(axes6, [1, 0], references="mutual"), mutual,
                               atol=1e-12)
    with pytest.raises(ValueError, match="references must be one of"):
        orthogonalize(axes6, [0, 1], references="lowdin")
    bad = np.vstack([axes6[:2], axes6[0] + axes6[1], axes6[3:]])
    with pytest.raises(ValueError, match=r"reference_idx \[0, 1, 2\]: refs row"):
        orthogonalize(bad, [0, 1, 2], references="mutual")
