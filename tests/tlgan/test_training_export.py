"""The weights folder ``tlgan generator train`` exports (tlgan/training/export.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tlgan.generators import load_generator


def test_training_writes_a_loadable_weights_folder(trained: Path) -> None:
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["kind"] == "generator-weights"
    assert cfg["architecture"] == {"name": "dcgan", "kwargs": {"nz": 100, "ngf": 8, "nc": 3}}
    assert (cfg["latent_size"], cfg["resolution"], cfg["value_range"]) == (100, 64, [-1.0, 1.0])
    assert cfg["iterations"] == 4 and cfg["batch"] == 4 and cfg["seed"] == 0
    assert len(cfg["data_checksum"]) == 64 and cfg["data"]["n_train"] == 12
    assert cfg["data"]["n_test"] == 3
    assert cfg["recipe"]["loss"] == "hinge" and cfg["recipe"]["d_norm"] == "spectral"
    metrics = cfg["metrics"]
    assert [s["iteration"] for s in metrics["fd_per_snapshot"]] == [2, 4]
    assert metrics["fd_best"] == min(min(s["fd"], s["fd_raw"])
                                     for s in metrics["fd_per_snapshot"])
    assert cfg["snapshot_weights"] in ("ema", "raw")
    assert metrics["fd_floor"] is not None and metrics["fd_floor"] >= 0
    assert cfg["snapshot_iteration"] in (2, 4)
    assert {"generator.safetensors", "samples.png"} <= set(cfg["files"])

    gen = load_generator(str(trained), device="cpu")
    faces = gen.render(np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32))
    assert faces.shape == (3, 64, 64, 3) and faces.dtype == np.uint8
    assert faces.std() > 0
    work = trained.parent / "tiny-dcgan.work"
    assert (work / "checkpoint.safetensors").is_file() and (work / "state.json").is_file()
    assert sorted(p.name for p in (work / "samples").iterdir()) == [
        "iter_000002.png", "iter_000004.png"]
