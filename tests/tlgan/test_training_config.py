"""The settings of ``tlgan generator train`` (tlgan/training/config.py) refuse bad values."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from training_helpers import TINY_CLI

from tlgan.cli.main import cli


def test_bad_options_exit_2(celeba_fixture: Path, tmp_path: Path) -> None:
    for extra, message in ((["--resolution", "128"], "resolution"),
                           (["--augment", "rotate"], "augment"),
                           (["--amp"], "amp")):
        res = CliRunner().invoke(cli, ["generator", "train", "--data", str(celeba_fixture),
                                       "--out", str(tmp_path / "o"), "--iterations", "1",
                                       "--extractor", "none", *TINY_CLI, *extra])
        assert res.exit_code == 2, res.output
        assert res.stderr.strip().splitlines() == [res.stderr.strip()]
        assert message in res.stderr
