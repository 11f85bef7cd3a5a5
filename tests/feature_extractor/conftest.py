"""Fixtures of the extractor tests: a tiny CelebA-format folder, a tiny trained extractor.

Everything except the ``real_weights`` tests runs on a tiny CelebA-format fixture made here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from extractor_helpers import TINY_TRAIN, make_celeba, train_cli_subprocess


@pytest.fixture()
def celeba_tiny(tmp_path: Path) -> Path:
    return make_celeba(tmp_path / "celeba")


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data dir, weights dir) of a 1-epoch tiny-width training run through the CLI.

    The training runs in a child process: a native crash there is this fixture's error (with
    the child's output), not the end of the test run.
    """
    base = tmp_path_factory.mktemp("fe")
    data = make_celeba(base / "celeba")
    out = base / "weights"
    proc = train_cli_subprocess(data, out, *TINY_TRAIN)
    assert proc.returncode == 0, (
        f"tlgan extractor train exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return data, out
