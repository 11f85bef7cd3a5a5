"""feature_extractor.calibration: Platt scaling, folding, ``tlgan extractor calibrate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from extractor_helpers import ATTRS, _one_line_error, make_celeba

from feature_extractor import extractor_weights
from tlgan.cli.extractor import extractor as extractor_cli


def test_fit_platt_recovers_scale_and_shift() -> None:
    from feature_extractor.calibration import fit_platt

    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (20000, 3))
    truth = [(0.6, -0.9), (1.5, 0.4), (1.0, 0.0)]
    y = np.stack([rng.random(20000) < 1 / (1 + np.exp(-(a * x[:, j] + b)))
                  for j, (a, b) in enumerate(truth)], 1)
    y[:, 2] = False  # a single class: identity
    scale, shift = fit_platt(x, y)
    assert np.allclose(scale[:2], [0.6, 1.5], atol=0.06)
    assert np.allclose(shift[:2], [-0.9, 0.4], atol=0.06)
    assert (scale[2], shift[2]) == (1.0, 0.0)
    with pytest.raises(ValueError, match="labels"):
        fit_platt(x, y[:, :2])
    with pytest.raises(ValueError, match="logits"):
        fit_platt(x[0], y[0])


def test_fold_into_head_maps_logits() -> None:
    import torch

    from feature_extractor.calibration import fold_into_head
    from feature_extractor.model import AttributeNet, ModelConfig

    torch.manual_seed(0)
    net = AttributeNet(ModelConfig(num_attributes=3, input_size=64, widths=(4, 8),
                                   depths=(1, 1))).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        fold_into_head(net, np.array([0.5, 2.0, 1.0]), np.array([1.0, -1.0, 0.0]))
        after = net(x)
    assert torch.allclose(after, before * torch.tensor([0.5, 2.0, 1.0])
                          + torch.tensor([1.0, -1.0, 0.0]), atol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        fold_into_head(net, np.ones(2), np.zeros(3))


def test_calibrate_cli_keeps_auc_and_records_source(trained: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    data, weights = trained
    src = json.loads((weights / "config.json").read_text())
    assert src["calibration"]["method"] == "platt"  # training calibrates by default
    out = tmp_path / "cal"
    res = CliRunner().invoke(extractor_cli, ["calibrate", "--weights", str(weights), "--data",
                                             str(data), "--out", str(out), "--quiet",
                                             "--device", "cpu"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["calibration"]["from_sha256"] == src["files"]["model.safetensors"]
    assert set(cfg["calibration"]["scale"]) <= set(ATTRS)
    assert "test_rate_gap_after" in cfg["calibration"]
    assert cfg["test_metrics_uncalibrated"] == src["test_metrics"]
    assert cfg["test_metrics"]["mean_auc"] == pytest.approx(src["test_metrics"]["mean_auc"],
                                                            abs=1e-6)
    assert extractor_weights.load_extractor(str(out), "cpu").attributes == ATTRS
    res = CliRunner().invoke(extractor_cli, ["calibrate", "--weights", str(weights), "--data",
                                             str(make_celeba(tmp_path / "np", partition=False)),
                                             "--out", str(tmp_path / "o2"), "--quiet"])
    assert res.exit_code == 2 and "partition" in _one_line_error(res)
    assert not (tmp_path / "o2").exists()
