"""``tlgan axes discover`` on the tiny pipeline (load_pipeline swapped for it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tlgan.cli.main import cli
from tlgan.pipeline import Pipeline
from tlgan_base.artifact import load_config


@pytest.fixture
def tiny_models(monkeypatch: pytest.MonkeyPatch, tiny_pipeline: Pipeline) -> Pipeline:
    def load(**_: Any) -> Pipeline:
        return Pipeline(tiny_pipeline.generator, tiny_pipeline.extractor, tiny_pipeline.bundle)

    monkeypatch.setattr("tlgan.assembly.load_pipeline", load)
    return tiny_pipeline


def test_discover_prints_and_writes(tiny_models: Pipeline, tmp_path: Path) -> None:
    out = tmp_path / "found"
    res = CliRunner().invoke(cli, ["axes", "discover", "--k", "3", "--faces", "2",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("0  eigenvalue") and "nearest axis:" in lines[0]
    assert len(lines) == 4 and "wrote" in lines[-1]
    cfg = load_config(out, kind="discovered-directions")
    assert cfg["method"] == "sefa" and cfg["k"] == 3 and len(cfg["directions"]) == 3
    assert cfg["provenance"]["generator"] == tiny_models.generator.name
    with np.load(out / "directions.npz") as f:
        assert f["directions"].shape == (3, tiny_models.latent_size)
    assert (out / "strips.png").stat().st_size > 0


@pytest.mark.slow
def test_discover_json_pca(tiny_models: Pipeline) -> None:
    res = CliRunner().invoke(cli, ["axes", "discover", "--k", "2", "--faces", "2",
                                   "--method", "pca", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["method"] == "pca" and len(doc["directions"]) == 2
    assert len(doc["directions"][0]["direction"]) == tiny_models.latent_size


def test_discover_bad_k() -> None:
    res = CliRunner().invoke(cli, ["axes", "discover", "--k", "0"])
    assert res.exit_code == 2 and "--k" in res.output
