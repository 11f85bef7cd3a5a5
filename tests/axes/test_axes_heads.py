"""axes.heads: logistic heads on frozen embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from axes.heads import Head, load_head, save_head, train_head
from tlgan_base.artifact import ArtifactError
from tlgan_base.classifier_metrics import roc_auc


def separable(n: int, e: int, seed: int, pos: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(e)
    emb = rng.standard_normal((n, e)) * rng.uniform(0.5, 5.0, e) + rng.uniform(-3, 3, e)
    score = (emb - emb.mean(0)) / emb.std(0) @ w
    labels = (score > np.quantile(score, 1 - pos)).astype(np.int64)
    return emb.astype(np.float16), labels


def test_head_learns_separable_data() -> None:
    # how fast a head trains is a bench figure (bench/axes.py: "axes add", head seconds),
    # not a timed test
    all_emb, all_labels = separable(14000, 256, seed=0)
    emb, labels = all_emb[:12000], all_labels[:12000]
    test_emb, test_labels = all_emb[12000:], all_labels[12000:]
    head = train_head(emb, labels, seed=0)
    assert head.val_auc is not None and head.val_auc > 0.9
    auc = roc_auc(test_labels, head.predict_proba(test_emb))
    assert auc is not None and auc > 0.9
    assert head.n_train == 12000 and head.positives_rate == pytest.approx(0.3, abs=0.02)
    assert head.C in (0.001, 0.01, 0.1, 1.0)


def test_head_is_balanced_on_rare_positives() -> None:
    emb, labels = separable(3000, 16, seed=1, pos=0.05)
    head = train_head(emb, labels, seed=0)
    p = head.predict_proba(emb)
    # class_weight="balanced": positives are not drowned, their mean prob is high
    assert p[labels == 1].mean() > 0.7 and p[labels == 0].mean() < 0.3


def test_predict_matches_manual_formula() -> None:
    emb, labels = separable(500, 8, seed=2)
    head = train_head(emb, labels, seed=3)
    x = emb[:5].astype(np.float64)
    logits = ((x - head.mean) / head.std) @ head.weights + head.bias
    np.testing.assert_allclose(head.decision_function(x), logits)
    np.testing.assert_allclose(head.predict_proba(x), 1 / (1 + np.exp(-logits)))


def test_seeded() -> None:
    emb, labels = separable(800, 8, seed=4)
    a = train_head(emb, labels, seed=5)
    b = train_head(emb, labels, seed=5)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.val_auc == b.val_auc


def test_save_load_and_dict_round_trip(tmp_path: Path) -> None:
    emb, labels = separable(400, 8, seed=6)
    head = train_head(emb, labels)
    path = save_head(head, tmp_path / "head.npz")
    loaded = load_head(path)
    for h in (loaded, Head.from_dict(head.to_dict())):
        np.testing.assert_array_equal(h.weights, head.weights)
        np.testing.assert_array_equal(h.mean, head.mean)
        np.testing.assert_array_equal(h.std, head.std)
        assert (h.bias, h.C, h.val_auc, h.n_train) == (head.bias, head.C, head.val_auc,
                                                       head.n_train)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="not a readable head file"):
        load_head(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="d is missing head keys"):
        Head.from_dict({"weights": [1.0]})


@pytest.mark.parametrize(
    ("emb", "labels", "match"),
    [
        (np.zeros(10), np.zeros(10), "embeddings must be a 2-D array"),
        (np.zeros((10, 3)), np.zeros(9), r"labels must have shape \(10,\)"),
        (np.zeros((10, 3)), np.full(10, 2), "labels must hold only 0 and 1"),
        (np.zeros((10, 3)), np.array([1] + [0] * 9), "at least 2 samples of each class"),
        (np.full((10, 3), np.nan), np.array([0, 1] * 5), "embeddings contains NaN"),
    ],
)
def test_bad_arguments(emb: np.ndarray, labels: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train_head(emb, labels)


def test_bad_head_shapes() -> None:
    emb, labels = separable(200, 4, seed=7)
    head = train_head(emb, labels, Cs=[1.0])
    with pytest.raises(ValueError, match=r"embeddings must have shape \(N, 4\)"):
        head.predict_proba(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="Cs must be"):
        train_head(emb, labels, Cs=[])


def test_cross_validated_accuracy_is_high_on_separable_and_chance_on_noise() -> None:
    from axes.heads import cross_validated_accuracy

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    emb = rng.standard_normal((60, 16)) + 5.0 * y[:, None] * (np.arange(16) == 0)
    assert cross_validated_accuracy(emb, y, 1.0) >= 0.9
    noise = rng.standard_normal((60, 16))
    assert cross_validated_accuracy(noise, y, 1.0) < 0.8
    assert cross_validated_accuracy(noise[:3], [0, 1, 1], 1.0) is None


def test_wilson_interval_and_near_chance_evidence() -> None:
    from axes.heads import accuracy_evidence, wilson_interval

    low, high = wilson_interval(0.5, 60)
    assert abs(low - 0.3773) < 1e-3 and abs(high - 0.6227) < 1e-3  # textbook values
    low, high = wilson_interval(1.0, 20)
    assert high == 1.0 and 0.83 < low < 0.84
    weak = accuracy_evidence(0.58, 60)  # the "cross-validated accuracy 0.58"
    assert weak["near_chance"] is True and weak["cv_accuracy_low"] < 0.5
    assert "near chance" in weak["warning"] and "0.58" in weak["warning"]
    strong = accuracy_evidence(0.8, 60)
    assert strong["near_chance"] is False and strong["warning"] is None
    assert accuracy_evidence(0.7, 20)["near_chance"] is True  # same accuracy, fewer marks
    assert accuracy_evidence(None, 5)["near_chance"] is True
    with pytest.raises(ValueError, match="accuracy/n"):
        wilson_interval(0.5, 0)


def _graded(n: int, e: int, seed: int, levels: int = 5) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Embeddings, a hidden linear score and its grades (equal-count bands, 0 .. 1)."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, e)) * rng.uniform(0.5, 3.0, e)
    score = emb[:, 0] / emb[:, 0].std() + 0.3 * rng.standard_normal(n)
    cuts = np.quantile(score, np.linspace(0, 1, levels + 1)[1:-1])
    return emb, score, np.searchsorted(cuts, score) / (levels - 1)


def test_graded_head_orders_faces_by_their_grade_and_is_calibrated() -> None:
    from axes.heads import train_graded_head

    emb, score, grades = _graded(400, 16, seed=0)
    head = train_graded_head(emb[:300], grades[:300])
    p = head.predict_proba(emb[300:])
    assert np.corrcoef(p, score[300:])[0, 1] > 0.8
    # calibrated on the grades as soft targets: the mean probability per grade rises with it
    means = [float(p[grades[300:] == g].mean()) for g in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert means == sorted(means) and means[0] < 0.3 and means[-1] > 0.7
    assert head.val_auc is None and head.n_train == 300
    assert head.positives_rate == pytest.approx(float(grades[:300].mean()))
    assert Head.from_dict(head.to_dict()).decision_function(emb[:3]) == pytest.approx(
        head.decision_function(emb[:3]))


def test_cross_validated_graded_accuracy_counts_the_marks_off_the_middle() -> None:
    from axes.heads import cross_validate_graded

    emb, _, grades = _graded(100, 16, seed=1)
    acc, auc, n = cross_validate_graded(emb, grades)
    assert n == int(np.sum(grades != 0.5)) == 80 and acc >= 0.85 and auc is not None
    noise = np.random.default_rng(2).standard_normal((100, 16))
    acc, auc, _ = cross_validate_graded(noise, grades)
    assert acc < 0.75


@pytest.mark.parametrize(("grades", "match"), [
    (np.r_[np.zeros(10), 1.5 * np.ones(10)], "grades must hold numbers in"),
    (np.r_[np.ones(19) * 0.5, 1.0],
     "grades needs at least 2 above 0.5 and 2 below"),
    (np.zeros(5), r"grades must have shape \(20,\)"),
])
def test_graded_head_bad_grades_name_the_argument(grades: np.ndarray, match: str) -> None:
    from axes.heads import cross_validate_graded, train_graded_head

    emb = np.random.default_rng(0).standard_normal((20, 4))
    with pytest.raises(ValueError, match=match):
        train_graded_head(emb, grades)
    with pytest.raises(ValueError, match=match):
        cross_validate_graded(emb, grades)


def test_stratified_folds_deal_every_stratum_evenly_and_check_k() -> None:
    from axes.heads import stratified_folds

    strata = np.array([0] * 10 + [1] * 7 + [2] * 3)
    folds = stratified_folds(strata, 3, seed=4)
    assert folds.shape == (20,) and set(folds.tolist()) == {0, 1, 2}
    for cls in (0, 1, 2):
        counts = np.bincount(folds[strata == cls], minlength=3)
        assert counts.max() - counts.min() <= 1
    assert np.array_equal(folds, stratified_folds(strata, 3, seed=4))
    assert not np.array_equal(folds, stratified_folds(strata, 3, seed=5))
    with pytest.raises(ValueError, match=r"^k: "):
        stratified_folds(strata, 0)
