"""`tlgan photo edit`: the whole photo written atomically with its OUT.json; a later edit
reusing it skips finding; bad input is one readable line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tlgan.cli import photo as photo_cli
from tlgan.cli.main import cli
from tlgan.testing import CentredFaceDetector


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch, tiny_pipeline: Any) -> list[int]:
    """The command on the tiny pipeline and the centred fake detector; counts detections."""
    calls: list[int] = []

    class Counting(CentredFaceDetector):
        def detect(self, photo: np.ndarray) -> Any:
            calls.append(1)
            return super().detect(photo)

    monkeypatch.setattr(photo_cli, "_load", lambda *a: tiny_pipeline)
    monkeypatch.setattr(photo_cli, "_detector", Counting)
    return calls


def _photo(path: Path) -> np.ndarray:
    arr = np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def test_photo_edit_writes_the_photo_and_its_json_and_a_reuse_skips_finding(
        tmp_path: Path, tiny: list[int]) -> None:
    original = _photo(tmp_path / "in.png")
    out = tmp_path / "out.png"
    res = CliRunner().invoke(cli, ["photo", "edit", str(tmp_path / "in.png"), "--move",
                                   "Smiling=2", "--lock", "Male", "--out", str(out)])
    assert res.exit_code == 0, res.output
    edited = np.asarray(Image.open(out).convert("RGB"))
    assert edited.shape == original.shape
    assert np.array_equal(edited[:, :15], original[:, :15])
    assert not np.array_equal(edited, original)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert set(meta) == {"latent", "adapter", "eyes", "faces", "face", "features", "unheld"}
    assert meta["face"] == 0 and meta["adapter"].startswith("tla1.") and len(tiny) == 1
    again = tmp_path / "again.png"
    res = CliRunner().invoke(cli, ["photo", "edit", str(tmp_path / "in.png"), "--move",
                                   "Smiling=2", "--lock", "Male", "--reuse",
                                   str(out.with_suffix(".json")), "--out", str(again)])
    assert res.exit_code == 0, res.output
    assert len(tiny) == 1  # no detection
    assert np.array_equal(np.asarray(Image.open(again).convert("RGB")), edited)


@pytest.mark.parametrize("args, words", [
    (["--move", "Smiling"], "move: expected AXIS=DISTANCE"),
    (["--move", "Nope=1"], "moves:"),
    (["--face", "4"], "face:"),
    (["--out-suffix", ".gif"], "out:"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, tiny: list[int], args: list[str],
                                          words: str) -> None:
    _photo(tmp_path / "in.png")
    out = tmp_path / "out.png"
    if args[0] == "--out-suffix":
        out, args = tmp_path / "out.gif", []
    res = CliRunner().invoke(cli, ["photo", "edit", str(tmp_path / "in.png"), *args,
                                   "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert words in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_not_an_image_is_named(tmp_path: Path, tiny: list[int]) -> None:
    (tmp_path / "in.jpg").write_bytes(b"hello")
    res = CliRunner().invoke(cli, ["photo", "edit", str(tmp_path / "in.jpg"), "--out",
                                   str(tmp_path / "o.jpg")])
    assert res.exit_code == 2 and "image:" in res.output, res.output


def test_help_shows_examples_and_defaults() -> None:
    res = CliRunner().invoke(cli, ["photo", "edit", "--help"])
    assert res.exit_code == 0
    assert "tlgan photo edit me.jpg --move Smiling=1.5 --out me-smiling.jpg" in res.output
    assert "default: 92" in res.output and "default: (the largest)" in res.output
