"""The judge's reading of issue 28's swing goal (bench/judge.py, bench/locality.py): its
calibrated P(Young), the image + mirror average, the per-reading swing rules, and the hold
variant whose corrections reach the whole face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tlgan.pipeline import Pipeline


def test_logistic_fit_recovers_a_known_map_and_auc_counts_pairs() -> None:
    from bench.judge import fit_logistic, roc_auc

    rng = np.random.default_rng(0)
    age = rng.uniform(15, 75, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-(6.0 - 0.15 * age)))).astype(int)
    a, b = fit_logistic(age, y)
    assert a == pytest.approx(6.0, abs=0.3) and b == pytest.approx(-0.15, abs=0.01)
    with pytest.raises(ValueError, match=r"^y: "):
        fit_logistic(age, np.ones_like(y))
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    # one of the four pairs ordered wrongly, one tied
    assert roc_auc(np.array([0.1, 0.5, 0.5, 0.9, 0.3]), np.array([0, 0, 1, 1, 1])) == \
        pytest.approx((1 + 1 + 0.5 + 1 + 1 + 0) / 6)
    with pytest.raises(ValueError, match=r"^labels: "):
        roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))


def test_p_young_falls_with_age_and_the_mirror_mean_averages_logits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.judge as bj

    monkeypatch.setitem(bj.YOUNG_FIT, False, (6.0, -0.15))
    monkeypatch.setitem(bj.YOUNG_FIT, True, (7.0, -0.2))
    assert bj.p_young(np.array([40.0]))[0] == pytest.approx(0.5)
    assert bj.p_young(np.array([35.0]), mirror=True)[0] == pytest.approx(0.5)
    assert np.all(np.diff(bj.p_young(np.linspace(10, 80, 8))) < 0)
    one = {"p_male": np.array([0.5, 0.9]), "age": np.array([20.0, 40.0])}
    flipped = {"p_male": np.array([0.5, 0.1]), "age": np.array([30.0, 50.0])}
    both = bj.mirror_mean(one, flipped)
    assert np.allclose(both["p_male"], [0.5, 0.5]) and np.allclose(both["age"], [25.0, 45.0])
    with pytest.raises(ValueError, match=r"^flipped: "):
        bj.mirror_mean(one, {"p_male": np.zeros(3), "age": np.zeros(3)})


def test_the_young_rule_counts_p_young_and_readings_keep_the_old_rule() -> None:
    from bench.locality import READINGS, judge_swings, reading_swings

    j0 = {"p_male": np.array([0.1, 0.1, 0.1]), "age": np.array([30.0, 30, 30]),
          "p_young": np.array([0.9, 0.9, 0.5])}
    j = {"p_male": np.array([0.1, 0.1, 0.1]), "age": np.array([45.0, 33, 30]),
         "p_young": np.array([0.7, 0.5, 0.1])}
    assert judge_swings(j0, j, rule="age")[1].tolist() == [True, False, False]
    assert judge_swings(j0, j, rule="young")[1].tolist() == [False, True, True]
    assert not judge_swings(j0, j, age=False, rule="young")[1].any()
    with pytest.raises(ValueError, match=r"^rule: "):
        judge_swings(j0, j, rule="years")
    mirrored = {k: v[::-1].copy() for k, v in j.items()}
    flags = reading_swings({False: j0, True: j0}, {False: j, True: mirrored})
    assert set(flags) == set(READINGS)
    assert flags["old"].tolist() == [True, False, False]
    assert flags["young"].tolist() == [False, True, True]
    # the mirror reading (p_young 0.1, 0.5, 0.7 against 0.9, 0.9, 0.5)
    assert flags["young+mirror"].tolist() == [True, True, False]


def test_paired_difference_of_equal_flags_is_zero() -> None:
    from bench.locality import paired_difference

    rng = np.random.default_rng(1)
    f = rng.random((4, 30)) < 0.3
    assert paired_difference(f, f) == "+0.0 [+0.0, +0.0]"
    more = f | (rng.random((4, 30)) < 0.5)
    lo = float(paired_difference(more, f).split("[")[1].split(",")[0])
    assert lo > 0
    with pytest.raises(ValueError, match=r"^first: "):
        paired_difference(f, f[:, :3])


def test_corrected_start_adds_the_correction_less_the_move() -> None:
    from bench.locality import corrected_start

    rng = np.random.default_rng(2)
    start = rng.standard_normal((3, 6))
    move = np.zeros((3, 6))
    move[:, 0] = [3.0, -3.0, 0.0]  # the last face does not move
    moved = start + move
    rows = np.arange(3)
    assert np.allclose(corrected_start(start, moved, start, rows), start, atol=1e-6)
    assert np.allclose(corrected_start(start, moved, moved, rows)[:2], start[:2], atol=1e-6)
    corr = np.zeros((3, 6))
    corr[:, 1] = 0.5
    corr[:, 0] = 0.25  # along the move: stays inside the mask
    out = corrected_start(start, moved, moved + corr, rows)
    assert np.allclose(out[:2, 1] - start[:2, 1], 0.5, atol=1e-6)
    assert np.allclose(out[:2, 0], start[:2, 0], atol=1e-6)
    assert np.allclose(out[2], start[2] + corr[2], atol=1e-6)  # no move: all of it
    assert np.allclose(corrected_start(start, moved, moved[[2, 0]], np.array([2, 0])),
                       [moved[2], start[0]], atol=1e-6)


def test_face_spread_keeps_the_frame_and_adds_the_correction_on_the_face(
        local: tuple[Pipeline, Path]) -> None:
    from bench.locality import face_ramp, spread_faces

    e = face_ramp(64)
    frame = np.ones((64, 64), bool)
    frame[6:-6, 6:-6] = False
    assert e[frame].max() == 0.0 and e[34, 32] == 1.0 and e[18:50, 20:44].min() >= 0.0
    assert face_ramp(128).shape == (128, 128)
    with pytest.raises(ValueError, match=r"^resolution: "):
        face_ramp(8)
    p, _ = local
    r = p.resolution
    z = p.seeds_to_latents(range(4))
    move = np.zeros_like(z)
    move[:, 0] = 2.0
    moved = z + move
    corr = np.zeros_like(z)
    corr[:, 1] = 1.5  # a correction orthogonal to the move
    mask = np.zeros((r, r), np.float32)
    mask[24:40, 24:40] = 1.0
    rows = np.arange(4)
    plain, whole, face = (spread_faces(p, z, moved, moved + corr, rows, mask, s).cpu().numpy()
                          for s in ("mask", "whole", "face"))
    ramp = face_ramp(r)
    assert np.allclose(face, plain + ramp * (whole - plain), atol=1e-6)
    out = ramp == 0
    assert np.array_equal(face[..., out], plain[..., out])
    assert np.abs(whole[..., out] - plain[..., out]).max() > 1e-3  # the whole spread reaches it
    with pytest.raises(ValueError, match=r"^spread: "):
        spread_faces(p, z, moved, moved, rows, mask, "hair")


def test_celeba_split_reads_one_partition_and_its_labels(tmp_path: Path) -> None:
    from PIL import Image

    from bench.judge import celeba_split, load_files

    (tmp_path / "img_align_celeba").mkdir()
    names = [f"{i:06d}.jpg" for i in range(6)]
    for i, n in enumerate(names):
        Image.fromarray(np.full((128, 128, 3), 40 * i, np.uint8)).save(
            tmp_path / "img_align_celeba" / n)
    (tmp_path / "list_eval_partition.txt").write_text(
        "".join(f"{n} {0 if i < 4 else 1}\n" for i, n in enumerate(names)))
    (tmp_path / "list_attr_celeba.txt").write_text(
        "6\nMale Young\n" + "".join(f"{n} {1 if i % 2 else -1} {1 if i < 3 else -1}\n"
                                    for i, n in enumerate(names)))
    files, y = celeba_split(str(tmp_path), 0)
    assert [Path(f).name for f in files] == names[:4] and y.tolist() == [1, 1, 1, 0]
    files, y = celeba_split(str(tmp_path), 1, attribute="Male")
    assert [Path(f).name for f in files] == names[4:] and y.tolist() == [0, 1]
    some, _ = celeba_split(str(tmp_path), 0, limit=2, seed=1)
    assert len(some) == 2 and set(some) <= set(celeba_split(str(tmp_path), 0)[0])
    assert some == celeba_split(str(tmp_path), 0, limit=2, seed=1)[0]
    with pytest.raises(ValueError, match=r"^attribute: "):
        celeba_split(str(tmp_path), 0, attribute="Tall")
    imgs = load_files(files)
    assert imgs.shape == (2, 64, 64, 3) and imgs.dtype == np.uint8 and imgs[1].min() == 200
    assert load_files([]).shape == (0, 64, 64, 3)
