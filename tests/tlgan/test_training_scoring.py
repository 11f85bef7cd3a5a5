"""``tlgan generator score`` (tlgan/training/scoring.py) on the tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tlgan.cli.main import cli
from tlgan.testing import tiny_extractor


def test_score_prints_fd_and_floor(trained: Path, celeba_fixture: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tlgan.training.scoring.load_metric_extractor",
                        lambda spec, device: tiny_extractor())
    res = CliRunner().invoke(cli, ["generator", "score", "--generator", str(trained),
                                   "--data", str(celeba_fixture), "--n", "8"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["n"] == 8 and out["fd"] > 0 and out["floor"] >= 0
    assert out["n_reference"] == 3
