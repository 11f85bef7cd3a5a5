"""Artifact folders: atomic replacement and readable permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from safetensors.numpy import save_file

from tlgan_base.artifact import atomic_artifact_dir, default_file_mode, load_config, save_config


def test_artifact_files_get_umask_mode(tmp_path: Path) -> None:
    """safetensors writes 0o600 files; a finished artifact's files are readable like open()'s."""
    import numpy as np

    out = tmp_path / "art"
    with atomic_artifact_dir(out) as tmp:
        save_file({"w": np.zeros(3, np.float32)}, str(tmp / "w.safetensors"))
        os.chmod(tmp / "w.safetensors", 0o600)
        save_config(tmp, {"kind": "test"})
    for name in ("w.safetensors", "config.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == default_file_mode()
    assert load_config(out, kind="test", verify=True)["files"]["w.safetensors"]


def test_failed_artifact_leaves_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "art"
    with atomic_artifact_dir(out) as tmp:
        save_config(tmp, {"kind": "test", "v": 1})
    with pytest.raises(RuntimeError), atomic_artifact_dir(out) as tmp:
        save_config(tmp, {"kind": "test", "v": 2})
        raise RuntimeError("boom")
    assert load_config(out, kind="test")["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["art"]
