"""`tlgan generator train/pack` on a tiny CelebA-format fixture, on CPU, in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from training_helpers import TINY, TINY_CLI

from tlgan.cli.main import cli
from tlgan.generators import load_generator
from tlgan.testing import tiny_extractor
from tlgan.training.config import GeneratorTrainConfig
from tlgan.training.data import list_images, load_image_set, read_pack, save_pack
from tlgan.training.trainer import train
from tlgan_base.trainloop import load_checkpoint, split_prefix


@pytest.mark.slow
def test_resume_continues_and_matches_an_uninterrupted_run(celeba_fixture: Path,
                                                           tmp_path: Path) -> None:
    def run(out: Path, iterations: int, resume: bool, logs: list[str]) -> None:
        train(GeneratorTrainConfig(data=str(celeba_fixture), out=str(out), iterations=iterations,
                          resume=resume, **TINY),  # type: ignore[arg-type]
              extractor=tiny_extractor(), log=logs.append)

    logs: list[str] = []
    run(tmp_path / "a", 2, False, logs)
    with pytest.raises(ValueError, match="--resume"):
        run(tmp_path / "a", 4, False, logs)
    run(tmp_path / "a", 4, True, logs)
    assert any("continuing from iteration 2" in m for m in logs)
    run(tmp_path / "b", 4, False, [])

    ta, sa = load_checkpoint(tmp_path / "a.work")
    tb, sb = load_checkpoint(tmp_path / "b.work")
    assert sa["iteration"] == sb["iteration"] == 4
    assert [s["iteration"] for s in sa["fd_per_snapshot"]] == [2, 4]
    for prefix in ("G", "D", "EMA"):
        a, b = split_prefix(ta, prefix), split_prefix(tb, prefix)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{prefix}.{k} differs after resume"
    assert json.loads((tmp_path / "a" / "config.json").read_text())["iterations"] == 4


def test_pack_round_trip_and_training_from_a_pack(celeba_fixture: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    pack = tmp_path / "fixture64.npz"
    res = runner.invoke(cli, ["generator", "pack", "--data", str(celeba_fixture), "--out",
                              str(pack)])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert (info["n_train"], info["n_test"]) == (12, 3)

    direct = load_image_set(celeba_fixture, 64)
    packed = read_pack(pack, 64)
    assert packed.source_sha256 == direct.source_sha256
    err = np.abs(packed.train.astype(int) - direct.train.astype(int)).mean()
    assert err < 4  # JPEG quality 95
    raw = tmp_path / "raw.npz"
    save_pack(direct, raw, encoding="raw")
    assert np.array_equal(read_pack(raw, 64).train, direct.train)
    with pytest.raises(ValueError, match="re-pack"):
        read_pack(raw, 32)

    out = tmp_path / "from-pack"
    res = runner.invoke(cli, ["generator", "train", "--data", str(pack), "--out", str(out),
                              "--iterations", "2", "--extractor", "none", *TINY_CLI])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["iterations"] == 2 and summary["fd"] is None
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data_checksum"] == direct.source_sha256
    assert cfg["data"]["kind"] == "pack:celeba"
    assert load_generator(str(out)).render(np.zeros((1, 100), np.float32)).shape == (1, 64, 64, 3)


def test_time_limit_stops_early_and_exports(celeba_fixture: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["generator", "train", "--data", str(celeba_fixture),
                                   "--out", str(tmp_path / "o"), "--iterations", "50",
                                   "--time-limit", "0.001", "--extractor", "none", *TINY_CLI])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["iterations"] == 1 and summary["stopped_by_time_limit"] is True
    cfg = json.loads((tmp_path / "o" / "config.json").read_text())
    assert (cfg["iterations"], cfg["iterations_target"]) == (1, 50)
    assert load_checkpoint(tmp_path / "o.work")[1]["iteration"] == 1


def test_dcgan_tutorial_recipe_trains(celeba_fixture: Path, tmp_path: Path) -> None:
    """The baseline the recipe is measured against: BatchNorm D, logistic loss, no EMA."""
    tiny = {**TINY, "eval_every": 1, "sample_every": 1}
    result = train(GeneratorTrainConfig(data=str(celeba_fixture), out=str(tmp_path / "base"),
                               iterations=2, loss="ns", d_arch="dcgan", d_norm="batch",
                               ema_decay=0.0, augment="none", flip=False,
                               **tiny),  # type: ignore[arg-type]
                   extractor=tiny_extractor(), log=lambda m: None)
    snaps = result.config["metrics"]["fd_per_snapshot"]
    assert [s["iteration"] for s in snaps] == [1, 2]
    assert all("fd_raw" not in s for s in snaps)  # no EMA: the raw G is the snapshot
    recipe = result.config["recipe"]
    assert (recipe["d_arch"], recipe["d_norm"], recipe["augment"]) == ("dcgan", "batch", "none")
    assert load_generator(str(tmp_path / "base")).latent_size == 100


def test_plain_folder_trains_on_all_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            tmp_path / f"f{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    listing = list_images(tmp_path)
    assert listing.kind == "folder" and len(listing.train) == 5 and listing.test == ()
    images = load_image_set(tmp_path, 64)
    assert images.train.shape == (5, 64, 64, 3) and images.test is None

    cache = tmp_path / "cache" / "faces64.npz"
    first = load_image_set(tmp_path, 64, cache=cache)
    assert cache.is_file()
    again = load_image_set(tmp_path, 64, cache=cache)
    assert np.array_equal(again.train, images.train)
    assert again.source_sha256 == first.source_sha256 == images.source_sha256
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "f0.png")
    changed = load_image_set(tmp_path, 64, cache=cache)  # stale cache is rebuilt
    assert changed.source_sha256 != images.source_sha256


@pytest.mark.parametrize("make_bad, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "no images"),
    (lambda p: (p / "list_eval_partition.txt").write_text("a.jpg 7\n") and p, "line 1"),
    (lambda p: (p / "list_eval_partition.txt").write_text("a.jpg 0\n") and p, "a.jpg"),
])
def test_bad_data_exits_2_with_one_line(tmp_path: Path, make_bad, message: str) -> None:  # type: ignore[no-untyped-def]
    data = make_bad(tmp_path)
    res = CliRunner().invoke(cli, ["generator", "train", "--data", str(data), "--out",
                                   str(tmp_path / "out"), "--extractor", "none", *TINY_CLI])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: data:") and message in lines[0]
    assert not (tmp_path / "out").exists()
