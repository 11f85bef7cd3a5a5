"""feature_extractor.model: labelling faces with trained weights (``tlgan extractor label``)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from extractor_helpers import ATTRS, _one_line_error

from tlgan.cli.extractor import extractor as extractor_cli


def test_label_cli(trained: tuple[Path, Path]) -> None:
    data, out = trained
    imgs = [str(data / "img_align_celeba" / f"00000{i}.jpg") for i in (1, 2)]
    res = CliRunner().invoke(extractor_cli, ["label", *imgs, "--weights", str(out), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert list(got) == imgs and list(got[imgs[0]]) == ATTRS
    table = CliRunner().invoke(extractor_cli, ["label", imgs[0], "--weights", str(out)])
    assert table.exit_code == 0 and len(table.stdout.strip().splitlines()) == 1 + len(ATTRS)
    bad = CliRunner().invoke(extractor_cli, ["label", str(data / "nope.jpg"), "--weights",
                                             str(out)])
    assert bad.exit_code == 2 and "nope.jpg does not exist" in _one_line_error(bad)
