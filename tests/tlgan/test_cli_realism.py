"""``tlgan edit --realism/--no-realism`` on the tiny pipeline (load_pipeline swapped for it,
with and without a tiny critic)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tlgan.cli.main import cli
from tlgan.latents import sample_latent
from tlgan.pipeline import Pipeline
from tlgan.testing import TINY_LATENT, tiny_critic


def _latents(tmp_path: Path, seeds: range) -> list[str]:
    paths = []
    for s in seeds:
        path = tmp_path / f"s{s}.json"
        path.write_text(json.dumps({"latent": [float(v) for v in sample_latent(s, TINY_LATENT)]}))
        paths.append(str(path))
    return paths


def _use(monkeypatch: pytest.MonkeyPatch, pipeline: Pipeline) -> None:
    def load(*_: Any, **__: Any) -> Pipeline:
        return pipeline

    monkeypatch.setattr("tlgan.assembly.load_pipeline", load)


def test_edit_prints_the_realism_outcome(tiny_pipeline: Pipeline, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    critic = tiny_critic(tiny_pipeline.generator, gain=30.0)
    _use(monkeypatch, dataclasses.replace(tiny_pipeline, critic=critic))
    paths = _latents(tmp_path, range(1, 9))
    args = ["edit", *paths, "--move", "Eyeglasses=3", "--no-hold-references", "--no-locality"]
    res = CliRunner().invoke(cli, [*args, "--realism", "--out", str(tmp_path / "on")])
    assert res.exit_code == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    real = [line["realism"] for line in lines]
    assert all(set(r) == {"start", "moved", "end", "held", "hold", "tolerance"} and r["hold"]
               for r in real)
    assert any(r["end"] > r["moved"] for r in real)
    for flag in ("--no-realism", None):  # the default: checked, not held
        off = CliRunner().invoke(cli, [*args, *([flag] if flag else []),
                                       "--out", str(tmp_path / "off")])
        assert off.exit_code == 0, off.stderr
        checked = [json.loads(line)["realism"] for line in off.stdout.splitlines()]
        assert [c["moved"] for c in checked] == pytest.approx([r["moved"] for r in real],
                                                              abs=1e-3)
        assert all(not c["hold"] and c["end"] == c["moved"] for c in checked)


def test_edit_refuses_realism_without_a_critic(tiny_pipeline: Pipeline, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, tiny_pipeline)
    paths = _latents(tmp_path, range(1, 2))
    res = CliRunner().invoke(cli, ["edit", *paths, "--move", "Smiling=1", "--realism",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and res.stderr.startswith("Error: realism: this service has no")
    res = CliRunner().invoke(cli, ["edit", *paths, "--move", "Smiling=1",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 0 and json.loads(res.stdout)["realism"] is None
