"""The tlgan CLI: generate, info, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tlgan.cli.main import cli


def test_help_lists_commands_with_examples() -> None:
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    for cmd in ("generate", "info"):
        assert cmd in res.output
    res = CliRunner().invoke(cli, ["generate", "--help"])
    assert "tlgan generate --seeds 1-8 --out faces/" in res.output
    assert "[default: 1-8]" in res.output


def test_info_json_lists_generators() -> None:
    res = CliRunner().invoke(cli, ["info", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert any(g["name"] == "dcgan-digiface64" for g in data["generators"])


@pytest.mark.real_weights
def test_generate_writes_images_and_latents_deterministically(tmp_path: Path) -> None:
    runner = CliRunner()
    for out in ("a", "b"):
        res = runner.invoke(cli, ["generate", "--seeds", "1-3", "--out", str(tmp_path / out),
                                  "--size", "128"])
        assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["seed0001.json", "seed0001.png", "seed0002.json", "seed0002.png",
                     "seed0003.json", "seed0003.png"]
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    meta = json.loads((tmp_path / "a" / "seed0002.json").read_text())
    assert meta["seed"] == 2 and len(meta["latent"]) == 100
    assert meta["generator"] == "celeba-dcgan64"
    one = runner.invoke(cli, ["generate", "--seeds", "5", "--out", str(tmp_path / "c")])
    assert one.exit_code == 0 and one.output.strip() == f"wrote 1 face to {tmp_path / 'c'}"
    assert res.output.strip().endswith(f"wrote 3 faces to {tmp_path / 'b'}")


def test_counts_in_messages_agree_in_number() -> None:
    from tlgan.cli.options import count

    assert count(1, "face") == "1 face" and count(120_000, "face") == "120,000 faces"
    assert count(1, "axis", "axes") == "1 axis" and count(40, "axis", "axes") == "40 axes"


@pytest.mark.parametrize("args,needle", [
    (["--seeds", "x"], "seeds"),
    (["--truncation", "2"], "truncation"),
    (["--size", "5000"], "size"),
    (["--generator", "nope"], "generator"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    res = CliRunner().invoke(cli, ["generate", "--out", str(tmp_path), *args])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.strip().splitlines() if ln]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.output


def test_info_text_names_what_each_entry_is_without_trailing_blanks() -> None:
    res = CliRunner().invoke(cli, ["info"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert all(line == line.rstrip() for line in lines)
    assert any(line.startswith(" * celeba-dcgan64") and "latent_size=100" in line
               for line in lines)
    assert any("celeba-cnn64" in line and "num_attributes=40" in line for line in lines)
    assert any(line.startswith("   celeba-dcgan64") and "axes=40" in line for line in lines)
