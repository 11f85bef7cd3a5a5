"""feature_extractor.evaluation: metrics, ``tlgan extractor eval``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from extractor_helpers import ATTRS, N_IMAGES, make_celeba

from feature_extractor import extractor_weights
from feature_extractor.evaluation import ATTRIBUTE_KEYS, REPORT_KEYS, compute_metrics
from tlgan.cli.extractor import extractor as extractor_cli
from tlgan_base.classifier_metrics import roc_auc


@pytest.mark.slow
def test_metrics_schema_and_single_class() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = (rng.random((50, 3)) < 0.4).astype(np.uint8)
    y[:, 2] = 0
    p = np.clip(y * 0.3 + rng.random((50, 3)) * 0.7, 0, 1)
    rep = compute_metrics(y, p, ["a", "b", "c"], weights="w")
    assert tuple(rep) == REPORT_KEYS and tuple(rep["attributes"]["a"]) == ATTRIBUTE_KEYS
    assert rep["attributes"]["a"]["auc"] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))
    assert rep["attributes"]["c"]["auc"] is None
    assert rep["mean_auc"] == pytest.approx(np.mean([rep["attributes"][k]["auc"]
                                                     for k in "ab"]))
    assert rep["attributes"]["b"]["baseline_accuracy"] == max(y[:, 1].mean(),
                                                              1 - y[:, 1].mean())
    assert roc_auc(np.array([0, 1, 1]), np.array([0.5, 0.5, 0.9])) == pytest.approx(0.75)


def test_eval_cli_json_schema(trained: tuple[Path, Path]) -> None:
    data, out = trained
    res = CliRunner().invoke(extractor_cli, ["eval", "--data", str(data), "--weights",
                                             str(out), "--json", "--quiet", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert tuple(rep) == REPORT_KEYS and rep["images"] == 8 and rep["weights"] == str(out)
    assert list(rep["attributes"]) == ATTRS
    for m in rep["attributes"].values():
        assert tuple(m) == ATTRIBUTE_KEYS
    assert rep["attributes"]["Rare_Thing"]["auc"] is None  # single class in test partition
    assert "Rare_Thing" in res.stderr and "excluded from means" in res.stderr
    aucs = [m["auc"] for m in rep["attributes"].values() if m["auc"] is not None]
    assert rep["mean_auc"] == pytest.approx(float(np.mean(aucs)))
    cfg = json.loads((out / "config.json").read_text())
    assert rep["mean_auc"] == pytest.approx(cfg["test_metrics"]["mean_auc"], abs=1e-6)


def test_eval_single_view_ignores_the_weights_views(trained: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    from feature_extractor.evaluation import evaluate

    data, out = trained
    multi = tmp_path / "multi"
    shutil.copytree(out, multi)
    cfg = json.loads((multi / "config.json").read_text())
    cfg["inference"].update(flip_tta=True, zooms=[1.0, 1.25])  # config.json is not checksummed
    (multi / "config.json").write_text(json.dumps(cfg))
    ext = extractor_weights.load_extractor(str(multi), "cpu")
    assert ext.views == 4
    four = evaluate(ext, data)["attributes"]
    ext.flip_tta, ext.tta_zooms = False, (1.0,)
    one = evaluate(ext, data)["attributes"]
    res = CliRunner().invoke(extractor_cli, ["eval", "--data", str(data), "--weights",
                                             str(multi), "--json", "--quiet", "--single-view"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["attributes"]
    assert rep == one and one != four


def test_eval_without_partition_file_uses_all_images(trained: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    _, out = trained
    root = make_celeba(tmp_path / "np", partition=False)
    res = CliRunner().invoke(extractor_cli, ["eval", "--data", str(root), "--weights",
                                             str(out), "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["images"] == N_IMAGES
