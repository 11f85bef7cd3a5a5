"""feature_extractor.training: ``tlgan extractor train``, the time budget, distillation."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from extractor_helpers import (
    ATTRS,
    N_IMAGES,
    TINY_TRAIN,
    _one_line_error,
    make_celeba,
    train_cli_subprocess,
)

from feature_extractor import extractor_weights
from feature_extractor.celeba_images import load_images
from feature_extractor.celeba_index import read_celeba
from tlgan.cli.extractor import extractor as extractor_cli


def test_train_smoke_writes_loadable_weights(trained: tuple[Path, Path]) -> None:
    import torch

    _, out = trained
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["kind"] == "extractor-weights" and cfg["attributes"] == ATTRS
    assert cfg["input_size"] == 64 and cfg["model"]["widths"] == [4, 8, 16, 32]
    assert cfg["data"]["images"] == N_IMAGES and len(cfg["data"]["sha256"]) == 64
    assert cfg["seed"] == 3 and cfg["epochs_run"] == 1 and len(cfg["val_metrics"]) == 1
    assert cfg["training"]["device"] == "cpu" and cfg["training"]["wall_seconds"] > 0
    assert cfg["training"]["stopped_by"] == "epochs" and cfg["inference"]["threshold"] == 0.5
    assert cfg["test_metrics"]["images"] == 8 and len(cfg["normalization"]["mean"]) == 3
    ext = extractor_weights.load_extractor(str(out), "cpu")
    assert ext.attributes == ATTRS and ext.embedding_size == 32
    assert ext.sha256 == cfg["files"]["model.safetensors"]
    imgs = np.random.default_rng(0).integers(0, 255, (5, 80, 80, 3), dtype=np.uint8)
    probs, emb = ext.predict_with_embeddings(imgs, batch_size=2)
    assert probs.shape == (5, 4) and emb.shape == (5, 32) and probs.dtype == np.float32
    assert np.all((probs > 0) & (probs < 1))
    assert np.allclose(ext.predict(imgs), probs, atol=1e-5)
    t_probs, t_emb = ext.forward_tensor(torch.from_numpy(imgs).permute(0, 3, 1, 2) / 255.0)
    assert np.allclose(t_probs.detach().numpy(), probs, atol=1e-5)
    assert np.allclose(t_emb.detach().numpy(), emb, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        ext.predict(imgs.astype(np.float32))


def test_time_budget_compresses_schedule(tmp_path: Path) -> None:
    from feature_extractor.training import train
    from feature_extractor.training_config import ExtractorTrainConfig

    data = make_celeba(tmp_path / "celeba")
    cfg = ExtractorTrainConfig(epochs=50, max_minutes=1e-4, batch_size=8,
                               widths=(4, 8, 16, 32), depths=(1, 1, 1, 1), device="cpu",
                               tta="none", calibrate=False)
    config = train(data, tmp_path / "w", cfg, progress=False, log=lambda m: None)
    assert config["calibration"] is None and config["training"]["calibrate"] is False
    tr = config["training"]
    assert tr["stopped_by"] == "time budget" and 1 <= tr["steps_run"] < tr["steps_planned"]
    assert config["epochs_run"] == 1 and config["inference"]["flip_tta"] is False
    assert config["inference"]["zooms"] == [1.0]


def test_distillation_from_teachers(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """A student trained with --teacher records its teachers; soft targets change the result;
    a teacher that lacks an attribute of the data is refused in one line."""
    import torch

    from feature_extractor.distill import load_teachers, teacher_targets
    from feature_extractor.training import train
    from feature_extractor.training_config import ExtractorTrainConfig

    data, teacher = trained
    common = dict(epochs=1, batch_size=8, widths=(4, 8, 16, 32), depths=(1, 1, 1, 1),
                  device="cpu", tta="none", seed=5)
    plain = train(data, tmp_path / "plain", ExtractorTrainConfig(**common), progress=False,
                  log=lambda m: None)
    res = CliRunner().invoke(extractor_cli, [
        "train", "--data", str(data), "--out", str(tmp_path / "student"), "--epochs", "1",
        "--width", "4", "--depths", "1,1,1,1", "--batch-size", "8", "--device", "cpu",
        "--tta", "none", "--seed", "5", "--quiet", "--teacher", str(teacher),
        "--teacher", str(teacher), "--distill", "1.0"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "student" / "config.json").read_text())
    sha = json.loads((teacher / "config.json").read_text())["files"]["model.safetensors"]
    assert [t["sha256"] for t in cfg["training"]["teachers"]] == [sha, sha]
    assert cfg["training"]["distill"] == 1.0
    assert cfg["files"]["model.safetensors"] != plain["files"]["model.safetensors"]
    # the targets are the teachers' (views-averaged) probabilities on the training rows
    ext = extractor_weights.load_extractor(str(teacher), "cpu")
    idx = read_celeba(data)
    imgs, _ = load_images(idx, np.arange(len(idx)), 64)
    rows = idx.indices("train")
    loaded = load_teachers(ExtractorTrainConfig(**common, teachers=(str(teacher),)),
                           idx.attributes, torch.device("cpu"))
    targets, info = teacher_targets(loaded, imgs, rows, idx.attributes, lambda m: None, False)
    assert len(info) == 1 and info[0]["sha256"] == sha
    assert np.allclose(targets.numpy()[rows], ext.predict(imgs[rows]), atol=1e-4)
    with pytest.raises(ValueError, match="distill"):
        ExtractorTrainConfig(distill=1.5)
    other = make_celeba(tmp_path / "other")
    text = (other / "list_attr_celeba.txt").read_text().replace("Smiling", "Bald")
    (other / "list_attr_celeba.txt").write_text(text)
    res = CliRunner().invoke(extractor_cli, [
        "train", "--data", str(other), "--out", str(tmp_path / "s2"), "--epochs", "1",
        "--width", "4", "--batch-size", "8", "--quiet", "--teacher", str(teacher)])
    assert res.exit_code == 2 and "does not predict" in _one_line_error(res)
    assert not (tmp_path / "s2").exists()


def test_train_cli_bad_input_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(extractor_cli, ["train", "--data", str(tmp_path / "none"),
                                             "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 2 and "does not exist" in _one_line_error(res)
    root = make_celeba(tmp_path / "np", partition=False)
    res = CliRunner().invoke(extractor_cli, ["train", "--data", str(root), "--out",
                                             str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 2 and "list_eval_partition.txt" in _one_line_error(res)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_tiny_training_completes_with_onednn_avx2_kernels(tmp_path: Path) -> None:
    """Issue #23: on CPUs with AVX2 and no AVX-512 (AMD EPYC), oneDNN's channels_last
    backward of the width-4 model's stride-2 1x1 convolutions corrupted memory, so this
    training hung or crashed. ONEDNN_MAX_CPU_ISA=AVX2 makes any x86 CPU take those kernels."""
    data = make_celeba(tmp_path / "celeba")
    out = tmp_path / "weights"
    try:
        proc = train_cli_subprocess(data, out, *TINY_TRAIN, env={"ONEDNN_MAX_CPU_ISA": "AVX2"},
                                    timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("tlgan extractor train --width 4 hung with ONEDNN_MAX_CPU_ISA=AVX2")
    assert proc.returncode == 0, (
        f"exit {proc.returncode} with ONEDNN_MAX_CPU_ISA=AVX2\n{proc.stdout}\n{proc.stderr}")
    assert json.loads((out / "config.json").read_text())["kind"] == "extractor-weights"
