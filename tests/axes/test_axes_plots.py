"""axes.plots: figures are written as PNG files, atomically; shapes are checked."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from axes.plots import save_cosine_heatmap, save_edit_strip, save_response_curves

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_edit_strip(tmp_path: Path) -> None:
    imgs = np.random.default_rng(0).integers(0, 255, (2, 5, 32, 32, 3), dtype=np.uint8)
    out = save_edit_strip(imgs, ["-2", "-1", "0", "+1", "+2"], ["Smiling", "Smiling | lock"],
                          tmp_path / "sub" / "strip.png", title="Smiling")
    assert is_png(out) and no_temp_files(out.parent)


def test_response_curves(tmp_path: Path) -> None:
    steps = np.linspace(-3, 3, 7)
    sig = 1 / (1 + np.exp(-steps))
    out = save_response_curves(steps, {"Smiling": sig}, {"Male": 0.5 + 0.1 * steps},
                               {"Male": np.full(7, 0.5)}, tmp_path / "curves.png")
    assert is_png(out) and no_temp_files(tmp_path)


def test_cosine_heatmap(tmp_path: Path) -> None:
    m = np.eye(3)
    m[0, 1] = m[1, 0] = 0.4
    out = save_cosine_heatmap(m, ["Male", "Young", "Smiling"], tmp_path / "cos.png")
    assert is_png(out) and no_temp_files(tmp_path)


def test_overwrites_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "cos.png"
    path.write_bytes(b"old")
    save_cosine_heatmap(np.eye(2), ["a", "b"], path)
    assert is_png(path)


def test_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"images must have shape \(rows, steps, H, W, 3\)"):
        save_edit_strip(np.zeros((5, 32, 32, 3), np.uint8), ["a"] * 5, ["r"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="images must be uint8"):
        save_edit_strip(np.zeros((1, 2, 4, 4, 3)), ["a", "b"], ["r"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="step_labels must have 2 entries"):
        save_edit_strip(np.zeros((1, 2, 4, 4, 3), np.uint8), ["a"], ["r"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="row_labels must have 1 entries"):
        save_edit_strip(np.zeros((1, 2, 4, 4, 3), np.uint8), ["a", "b"], [], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"target_curves\['S'\] must have shape \(3,\)"):
        save_response_curves(np.arange(3), {"S": np.zeros(4)}, {}, {}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"drift_after\['M'\]"):
        save_response_curves(np.arange(3), {"S": np.zeros(3)}, {}, {"M": [1]},
                             tmp_path / "x.png")
    with pytest.raises(ValueError, match="matrix must be a square"):
        save_cosine_heatmap(np.zeros((2, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="names must have 2 entries"):
        save_cosine_heatmap(np.eye(2), ["a"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_pyplot_is_not_imported() -> None:
    import subprocess

    code = ("import sys, numpy as np, tempfile, os\n"
            "from axes.plots import save_cosine_heatmap\n"
            "d = tempfile.mkdtemp()\n"
            "save_cosine_heatmap(np.eye(2), ['a', 'b'], os.path.join(d, 'c.png'))\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
