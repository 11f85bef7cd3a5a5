"""`tlgan axes copy-default OUT`: a verified, atomic copy of the shipped bundle that a user can
add axes to (README's data-scientist path), leaving the shipped one untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tlgan.axis_work.bundle_store import BUNDLES, copy_default_bundle, default_bundle_path
from tlgan.cli.main import cli
from tlgan_base.artifact import ArtifactError, load_config, sha256_file


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir())}


def test_copy_default_copies_the_shipped_bundle_verified(tmp_path: Path) -> None:
    shipped = default_bundle_path("celeba-dcgan64")
    res = CliRunner().invoke(cli, ["axes", "copy-default", str(tmp_path / "mine")])
    assert res.exit_code == 0, res.output
    assert "40 axes" in res.output and "tlgan axes add" in res.output
    assert _digests(tmp_path / "mine") == _digests(shipped)
    config = load_config(tmp_path / "mine", kind="axis-bundle")  # verifies every sha256
    assert config["id"] == load_config(shipped)["id"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temporary folder left


def test_copy_default_of_another_generator(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["axes", "copy-default", str(tmp_path / "d"),
                                   "--generator", "dcgan-digiface64"])
    assert res.exit_code == 0, res.output
    assert _digests(tmp_path / "d") == _digests(BUNDLES["dcgan-digiface64"].path)


def test_copy_default_refuses_an_existing_folder_and_an_unknown_generator(
        tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    res = CliRunner().invoke(cli, ["axes", "copy-default", str(tmp_path / "taken")])
    assert res.exit_code == 2
    assert "out:" in res.output and "already exists" in res.output
    assert "Traceback" not in res.output
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    res = CliRunner().invoke(cli, ["axes", "copy-default", str(tmp_path / "x"),
                                   "--generator", "no-such-gan"])
    assert res.exit_code == 2 and "no-such-gan" in res.output
    assert not (tmp_path / "x").exists()


def test_a_failed_copy_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = shutil.copyfile

    def flaky(src: str, dst: str) -> object:
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(shutil, "copyfile", flaky)
    with pytest.raises(OSError, match="disk full"):
        copy_default_bundle("celeba-dcgan64", tmp_path / "mine")
    assert list(tmp_path.iterdir()) == []  # neither OUT nor a partial folder


def test_a_corrupt_shipped_bundle_is_not_copied(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "shipped"
    shutil.copytree(default_bundle_path("celeba-dcgan64"), fake)
    with open(fake / "axes.npz", "ab") as f:
        f.write(b"\0")
    monkeypatch.setattr("tlgan.axis_work.bundle_store.default_bundle_path", lambda generator: fake)
    with pytest.raises(ArtifactError, match=r"axes\.npz"):
        copy_default_bundle("celeba-dcgan64", tmp_path / "mine")
    assert not (tmp_path / "mine").exists()


@pytest.mark.real_weights
def test_axes_can_be_taught_into_the_copy_and_the_shipped_bundle_is_untouched(
        tmp_path: Path) -> None:
    shipped = default_bundle_path("celeba-dcgan64")
    before = _digests(shipped)
    runner = CliRunner()
    assert runner.invoke(cli, ["axes", "copy-default", str(tmp_path / "b")]).exit_code == 0
    # marks: seeds labelled by the shipped extractor's Smiling, a stand-in for a user's marks
    from tlgan.assembly import load_pipeline

    pipe = load_pipeline(device="cpu")
    ids = list(range(40))
    probs = pipe.label_latents(pipe.seeds_to_latents(ids))
    smiling = probs[:, pipe.attributes.index("Smiling")]
    marks = tmp_path / "marks.jsonl"
    marks.write_text("".join(json.dumps({"seed": s, "label": int(p > 0.5)}) + "\n"
                             for s, p in zip(ids, smiling, strict=True)))
    res = runner.invoke(cli, ["axes", "teach", "Smiling_mine", "--examples", str(marks),
                              "--bundle", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    names = load_config(tmp_path / "b", kind="axis-bundle")["names"]
    assert "Smiling_mine" in names and len(names) == 41
    assert _digests(shipped) == before
