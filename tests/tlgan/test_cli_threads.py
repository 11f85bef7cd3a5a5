"""Every command that runs models sets torch's threads as ``tlgan serve`` does (issue #23:
``tlgan encode`` took torch's default, every core, and was 5-10x slower on a busy machine):
``--threads N|auto``, also read from TLGAN_TORCH_THREADS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from tlgan.cli.main import cli
from tlgan_base.devices import default_threads


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """torch.get_num_threads() when a command loads its models (which then stops it)."""
    calls: list[int] = []

    def load(*_: Any, **__: Any) -> None:
        calls.append(torch.get_num_threads())
        raise ValueError("stop here")

    monkeypatch.setattr("tlgan.assembly.load_pipeline", load)
    monkeypatch.setattr("tlgan.generators.load_generator", load)
    monkeypatch.delenv("TLGAN_TORCH_THREADS", raising=False)
    return calls


def _commands(tmp_path: Path) -> dict[str, list[str]]:
    photo = tmp_path / "p.png"
    photo.write_bytes(b"")
    latent = tmp_path / "z.json"
    latent.write_text("{}")
    return {"encode": ["encode", str(photo), "--out", str(tmp_path / "e")],
            "edit": ["edit", str(latent), "--out", str(tmp_path / "d")],
            "generate": ["generate", "--out", str(tmp_path / "g")]}


@pytest.mark.parametrize("command", ["encode", "edit", "generate"])
def test_threads_option_reaches_torch(command: str, seen: list[int], tmp_path: Path) -> None:
    args = _commands(tmp_path)[command]
    torch.set_num_threads(1)
    res = CliRunner().invoke(cli, [*args, "--threads", "3"])
    assert res.exit_code == 2 and "stop here" in res.output, res.output
    assert seen == [3]


def test_threads_default_is_the_servers_and_the_setting_is_honoured(
        seen: list[int], tmp_path: Path) -> None:
    args = _commands(tmp_path)["generate"]
    torch.set_num_threads(5)
    CliRunner().invoke(cli, args)
    CliRunner().invoke(cli, args, env={"TLGAN_TORCH_THREADS": "2"})
    CliRunner().invoke(cli, args, env={"TLGAN_TORCH_THREADS": "0"})  # 0: auto, as for serve
    CliRunner().invoke(cli, [*args, "--threads", "auto"], env={"TLGAN_TORCH_THREADS": "2"})
    assert seen == [default_threads(), 2, default_threads(), default_threads()]


@pytest.mark.parametrize("value,where", [("0", "--threads"), ("-1", "--threads"),
                                         ("two", "--threads"), (None, "TLGAN_TORCH_THREADS")])
def test_bad_thread_count_is_one_line_exit_2(value: str | None, where: str, seen: list[int],
                                             tmp_path: Path) -> None:
    args = _commands(tmp_path)["encode"]
    if value is None:
        res = CliRunner().invoke(cli, args, env={"TLGAN_TORCH_THREADS": "-3"})
    else:
        res = CliRunner().invoke(cli, [*args, "--threads", value])
    lines = [ln for ln in res.output.strip().splitlines() if ln]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith(f"Error: {where}: "), res.output
    assert "not a thread count" in lines[0]
    assert seen == []  # stopped before any model was loaded


def test_every_model_command_takes_threads() -> None:
    from tlgan.cli.main import cli as group

    def walk(cmd: Any, path: str) -> Iterator[tuple[str, Any]]:
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")
        if not hasattr(cmd, "commands"):
            yield path, cmd

    for path, cmd in walk(group, "tlgan"):
        options = {o for p in cmd.params for o in getattr(p, "opts", [])}
        if "--device" in options:
            assert "--threads" in options, f"{path} runs models but has no --threads"
