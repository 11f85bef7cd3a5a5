"""Fixtures of the extractor tests: a tiny CelebA-format folder, a tiny trained extractor.

Everything except the ``real_weights`` tests runs on a tiny CelebA-format fixture made here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from extractor_helpers import make_celeba

from tlgan.cli.extractor import extractor as extractor_cli


@pytest.fixture()
def celeba_tiny(tmp_path: Path) -> Path:
    return make_celeba(tmp_path / "celeba")


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data dir, weights dir) of a 1-epoch tiny-width training run through the CLI."""
    base = tmp_path_factory.mktemp("fe")
    data = make_celeba(base / "celeba")
    out = base / "weights"
    res = CliRunner().invoke(extractor_cli, [
        "train", "--data", str(data), "--out", str(out), "--epochs", "1", "--width", "4",
        "--batch-size", "8", "--device", "cpu", "--quiet", "--seed", "3"])
    assert res.exit_code == 0, res.output
    return data, out
