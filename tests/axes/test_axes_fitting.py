"""axes.fitting: planted-direction recovery, statistics, arguments."""

from __future__ import annotations

import numpy as np
import pytest

from axes.evidence import make_synthetic
from axes.fitting import (
    DEFAULT_METHOD,
    METHODS,
    fit_axes,
    fit_one,
    split_indices,
)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return make_synthetic(4000, 20, 3, scale=2.0, bias=(-2.0, 0.5), seed=7)


@pytest.mark.parametrize("method", METHODS)
def test_recovers_planted_direction(method: str, data: tuple[np.ndarray, ...]) -> None:
    z, p, w = data
    res = fit_axes(z, p, ["a", "b", "c"], method=method, n_jobs=1)
    cos = np.sum(res.axes * w, axis=1)
    assert np.all(cos > 0.95), cos
    np.testing.assert_allclose(np.linalg.norm(res.axes, axis=1), 1.0)
    assert res.method == method


def test_glm_binomial_equals_statsmodels_glm() -> None:
    import statsmodels.api as sm

    z, p, _ = make_synthetic(600, 5, 1, seed=3)
    _, st = fit_one(z, p[:, 0], holdout=0.0)
    ref = sm.GLM(p[:, 0], sm.add_constant(z), family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(st["coef"], ref.params[1:], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(st["intercept"], ref.params[0], rtol=1e-7)
    np.testing.assert_allclose(st["stderr"], ref.bse[1:], rtol=1e-6)


def test_default_method_is_glm_binomial() -> None:
    assert DEFAULT_METHOD == "glm-binomial"


def test_stats_content(data: tuple[np.ndarray, ...]) -> None:
    z, p, _ = data
    calls: list[tuple[int, int, str]] = []
    res = fit_axes(z, p, ["a", "b", "c"], holdout=0.25, seed=1,
                   progress=lambda d, t, n: calls.append((d, t, n)))
    assert [c[0] for c in calls] == [1, 2, 3] and {c[2] for c in calls} == {"a", "b", "c"}
    for a, st in enumerate(res.stats):
        assert st["n_holdout"] == 1000 and st["n_train"] == 3000
        assert st["coef"].shape == (20,) and st["stderr"].shape == (20,)
        assert np.all(st["stderr"] > 0)
        np.testing.assert_allclose(st["coef_norm"], np.linalg.norm(st["coef"]))
        np.testing.assert_allclose(res.axes[a], st["coef"] / st["coef_norm"])
        assert 0.85 < st["auc_holdout"] <= 1.0
        assert 0.2 < st["r2_holdout"] <= 1.0
        assert 0.2 < st["deviance_explained_holdout"] <= 1.0
        assert st["positives_rate"] == pytest.approx(np.mean(p[:, a] > 0.5))
        assert st["converged"] is True
    np.testing.assert_allclose(res.coefs[1], res.stats[1]["coef"])
    assert res.index("b") == 1
    with pytest.raises(ValueError, match="valid"):
        res.index("nope")


def test_results_do_not_depend_on_threads(data: tuple[np.ndarray, ...]) -> None:
    z, p, _ = data
    one = fit_axes(z, p, ["a", "b", "c"], n_jobs=1)
    two = fit_axes(z, p, ["a", "b", "c"], n_jobs=2)
    np.testing.assert_array_equal(one.axes, two.axes)
    assert [s["name"] for s in two.stats] == ["a", "b", "c"]


def test_no_holdout_gives_none_metrics(data: tuple[np.ndarray, ...]) -> None:
    z, p, _ = data
    res = fit_axes(z, p[:, :1], ["a"], holdout=0.0)
    st = res.stats[0]
    assert st["auc_holdout"] is None and st["r2_holdout"] is None
    assert st["n_train"] == 4000 and st["n_holdout"] == 0


def test_split_is_seeded() -> None:
    a = split_indices(100, 0.2, 5)
    b = split_indices(100, 0.2, 5)
    c = split_indices(100, 0.2, 6)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert len(a[1]) == 20 and len(np.intersect1d(a[0], a[1])) == 0


def test_constant_labels_name_the_attribute() -> None:
    z = np.random.default_rng(0).standard_normal((200, 4))
    y = np.column_stack([np.full(200, 0.1), np.linspace(0, 1, 200)])
    with pytest.raises(ValueError, match="attribute 'Bald'"):
        fit_axes(z, y, ["Bald", "Smiling"], method="logit-binary")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": np.zeros((10, 2))}, "y must be a 2-D array"),
        ({"y": np.full((300, 2), 1.5)}, "y must hold probabilities"),
        ({"names": ["a"]}, "names must have 2 entries"),
        ({"names": ["a", "a"]}, "names must be unique"),
        ({"method": "ols"}, "method must be one of"),
        ({"holdout": 1.0}, "holdout must be in"),
        ({"z": np.zeros(300)}, "z must be a 2-D array"),
        ({"n_jobs": 0}, "n_jobs must be"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    rng = np.random.default_rng(0)
    args: dict[str, object] = {"z": rng.standard_normal((300, 4)),
                               "y": rng.random((300, 2)), "names": ["a", "b"]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit_axes(**args)  # type: ignore[arg-type]


def test_too_few_samples() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="too few training samples"):
        fit_axes(rng.standard_normal((20, 30)), rng.random((20, 1)), ["a"])


def test_covariates_are_fitted_beside_z_but_left_out_of_the_axis() -> None:
    from axes.fitting import reference_covariates

    rng = np.random.default_rng(4)
    n, dim = 6000, 12
    z = rng.standard_normal((n, dim))
    u = np.eye(dim)[0]  # the reference's direction
    w = np.eye(dim)[1]  # the attribute's own direction
    p_ref = 1 / (1 + np.exp(-(2.0 * z @ u + 0.5 * rng.standard_normal(n))))
    ref_logit = np.log(p_ref / (1 - p_ref))
    # the attribute depends on z directly and on the reference's *output* (like No_Beard on Male)
    p = 1 / (1 + np.exp(-(1.5 * z @ w + 1.0 * ref_logit)))
    plain = fit_axes(z, p[:, None], ["a"], n_jobs=1)
    cond = fit_axes(z, p[:, None], ["a"], n_jobs=1, covariates=reference_covariates(p_ref[:, None]))
    assert abs(float(plain.axes[0] @ w)) < 0.8  # the plain slope folds the reference in
    assert float(cond.axes[0] @ w) > 0.98 and abs(float(cond.axes[0] @ u)) < 0.1
    assert cond.stats[0]["coef"].shape == (dim,) and cond.stats[0]["stderr"].shape == (dim,)
    assert abs(cond.stats[0]["coef_norm"] - 1.5) < 0.2
    axis, _ = fit_one(z, p, covariates=reference_covariates(p_ref[:, None]))
    np.testing.assert_allclose(axis, cond.axes[0], atol=1e-6)
    with pytest.raises(ValueError, match="covariates must be a 2-D array"):
        fit_axes(z, p[:, None], ["a"], covariates=ref_logit)
    with pytest.raises(ValueError, match="covariates contains NaN"):
        fit_one(z, p, covariates=np.full((n, 1), np.nan))
