"""`tlgan encoder train`, the encoder weights folder, and `tlgan encode` / `tlgan edit`, on a
tiny CelebA-format folder with the real generator and extractor (a few steps)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from training_helpers import make_celeba

from tlgan.cli.main import cli
from tlgan_base.artifact import ArtifactError

pytestmark = pytest.mark.slow


def _train(data: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["encoder", "train", "--data", str(data), "--out", str(out),
                                   "--batch", "4", "--eval-every", "3", "--val-images", "4",
                                   "--quiet", *extra])
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("enc")
    data = make_celeba(root / "celeba")
    code, _, err = _train(data, root / "encoder", "--steps", "3")
    assert code == 0, err
    code, _out, err = _train(data, root / "encoder", "--steps", "6", "--resume")
    assert code == 0, err
    assert "resumed at step 3" in err
    return data, root / "encoder"


def test_training_writes_a_checked_folder_tied_to_the_generator(trained: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    from tlgan.encoders.encoder_weights import load_encoder
    from tlgan.generators import GENERATORS, load_generator
    from tlgan.testing import tiny_generator

    _data, folder = trained
    config = json.loads((folder / "config.json").read_text())
    assert config["kind"] == "encoder-weights"
    assert config["generator"]["sha256"] == GENERATORS["celeba-dcgan64"].sha256
    assert config["data"]["train_images"] == 16 and config["data"]["val_images"] == 4
    assert [h["step"] for h in config["training"]["history"]] == [3, 6]
    assert config["training"]["steps_run"] == 6
    assert {"encoder.safetensors", "reconstructions.png"} <= set(config["files"])
    assert set(config["metrics"]) >= {"val_psnr", "val_cosine", "val_agreement", "val_loss"}
    gen = load_generator(None)
    enc = load_encoder(str(folder), gen)
    assert enc is not None and enc.sha256 == config["files"]["encoder.safetensors"]
    with pytest.raises(ArtifactError, match="trained for generator 'celeba-dcgan64'"):
        load_encoder(str(folder), tiny_generator(0, latent_size=100))
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)  # the module's other tests use the folder itself
    (broken / "encoder.safetensors").write_bytes(b"not weights")
    with pytest.raises(ArtifactError, match="corrupt"):
        load_encoder(str(broken), gen)
    with pytest.raises(ValueError, match=r"^encoder:"):
        load_encoder(str(folder / "nowhere"), gen)


def test_training_refuses_bad_data_and_settings_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    code, _, err = _train(tmp_path / "plain", tmp_path / "o", "--steps", "2")
    assert code == 2 and err.count("\n") == 1 and "list_eval_partition.txt" in err
    code, _, err = _train(make_celeba(tmp_path / "c"), tmp_path / "o", "--steps", "0")
    assert code == 2 and err.startswith("Error: steps:"), err
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def encoder_folder(trained: tuple[Path, Path]) -> tuple[Path, Path]:
    return trained


@pytest.fixture
def noise_photo(encoder_folder: tuple[Path, Path],
                monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A training photo (noise) and the encoder's folder; a fake detector frames each photo
    as an aligned crop."""
    import tlgan.photos.faces
    from tlgan.testing import CentredFaceDetector

    monkeypatch.setattr(tlgan.photos.faces, "HaarFaceDetector", CentredFaceDetector)
    data, folder = encoder_folder
    return data / "img_align_celeba" / "000021.jpg", folder


def test_encode_then_edit_from_the_command_line(noise_photo: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    from api.schemas import EditRequest

    photo, folder = noise_photo
    res = CliRunner().invoke(cli, ["encode", str(photo), "--out", str(tmp_path / "enc"),
                                   "--encoder", str(folder), "--steps", "2"])
    assert res.exit_code == 0, res.stderr
    assert "PSNR" in res.stderr
    body = json.loads((tmp_path / "enc" / "000021.json").read_text())
    assert set(body) == {"latent"} and len(body["latent"]) == 100
    EditRequest.model_validate(body)  # POST /edit takes the file as it is
    meta = json.loads((tmp_path / "enc" / "000021.meta.json").read_text())
    assert meta["steps"] == 2 and meta["generator"] == "celeba-dcgan64"
    assert meta["photo"] == "000021.jpg"  # the file's name, not where it lay (issue #23)
    assert set(meta["quality"]) == {"psnr", "embedding_cosine", "label_agreement"}
    assert meta["face"] == 0 and meta["faces"] == [{"box": [0.0, 8.0, 72.0, 80.0],
                                                    "score": 1.0}]
    with Image.open(tmp_path / "enc" / "000021.png") as im:
        assert im.size == (64, 64)
    res = CliRunner().invoke(cli, ["edit", str(tmp_path / "enc" / "000021.json"),
                                   "--move", "Smiling=2", "--lock", "Male",
                                   "--out", str(tmp_path / "ed")])
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out["features"]) == {"Smiling", "Male"}
    moved = json.loads((tmp_path / "ed" / "000021.json").read_text())["latent"]
    assert moved != body["latent"]



def test_encode_tunes_an_adapter_of_the_parts_asked_for(noise_photo: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    from api.schemas import EditRequest

    photo, folder = noise_photo
    runs = {}
    for parts in (None, "bn", "bn+last"):
        out = tmp_path / str(parts)
        extra = [] if parts is None else ["--adapter-parts", parts]
        res = CliRunner().invoke(cli, ["encode", str(photo), "--out", str(out), "--encoder",
                                       str(folder), "--steps", "0", *extra])
        assert res.exit_code == 0, res.stderr
        body = json.loads((out / "000021.json").read_text())
        meta = json.loads((out / "000021.meta.json").read_text())
        assert meta["adapter_parts"] == parts
        EditRequest.model_validate(body)  # POST /edit takes the file as it is
        runs[parts] = body, meta["quality"]["psnr"]
    assert set(runs[None][0]) == {"latent"}
    assert runs["bn"][0]["adapter"].startswith("tla1.b.")
    assert runs["bn+last"][0]["adapter"].startswith("tla1.bl.")
    assert runs["bn"][0]["latent"] == runs["bn+last"][0]["latent"] == runs[None][0]["latent"]
    assert runs["bn"][1] > runs[None][1] and runs["bn+last"][1] > runs[None][1]
    res = CliRunner().invoke(cli, ["encode", str(photo), "--out", str(tmp_path / "x"),
                                   "--encoder", str(folder), "--adapter-parts", "last"])
    assert res.exit_code == 2 and "--adapter-parts" in res.stderr, res.stderr


def test_edit_takes_several_latents(tmp_path: Path) -> None:
    """Issue #23: `tlgan edit` moves every latent given, one JSON line each."""
    rng = np.random.default_rng(0)
    paths = []
    for name in ("a", "b", "c"):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps({"latent": rng.standard_normal(100).tolist()}))
    res = CliRunner().invoke(cli, ["edit", *map(str, paths), "--move", "Smiling=2",
                                   "--lock", "Male", "--out", str(tmp_path / "ed")])
    assert res.exit_code == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [line["out"] for line in lines] == [str(tmp_path / "ed" / f"{n}.png")
                                               for n in ("a", "b", "c")]
    assert all(set(line["features"]) == {"Smiling", "Male"} for line in lines)
    for p in paths:
        moved = json.loads((tmp_path / "ed" / p.name).read_text())["latent"]
        assert moved != json.loads(p.read_text())["latent"]
        assert (tmp_path / "ed" / p.name.replace(".json", ".png")).is_file()
    # the same moves as one at a time (locks held per face)
    one = CliRunner().invoke(cli, ["edit", str(paths[1]), "--move", "Smiling=2", "--lock",
                                   "Male", "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.stderr
    assert json.loads(one.stdout)["features"] == pytest.approx(lines[1]["features"], abs=0.002)
    twins = tmp_path / "twin"
    twins.mkdir()
    (twins / "a.json").write_text(paths[0].read_text())
    res = CliRunner().invoke(cli, ["edit", str(paths[0]), str(twins / "a.json"),
                                   "--out", str(tmp_path / "t")])
    assert res.exit_code == 2 and res.stderr.startswith("Error: latents: two latents have")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("args, message", [
    (["--move", "Smiling"], "Error: move: expected AXIS=DISTANCE"),
    (["--move", "Nope=1"], "Error: moves: unknown axis 'Nope'"),
    (["--lock", "Nope"], "Error: lock: unknown axis 'Nope'"),
])
def test_edit_refuses_bad_moves_in_one_line(tmp_path: Path, args: list[str],
                                            message: str) -> None:
    latent = tmp_path / "z.json"
    latent.write_text(json.dumps({"latent": [0.0] * 100}))
    res = CliRunner().invoke(cli, ["edit", str(latent), "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 2 and res.stderr.startswith(message), res.stderr
    assert res.stderr.count("\n") == 1


def test_encode_refuses_a_non_image_in_one_line(encoder_folder: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    _, folder = encoder_folder
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    res = CliRunner().invoke(cli, ["encode", str(bad), "--out", str(tmp_path / "o"),
                                   "--encoder", str(folder)])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"Error: photo {bad}: not a JPEG, PNG or WebP image")
    assert res.stderr.count("\n") == 1
    assert not (tmp_path / "o" / "notes.json").exists()


def test_encode_finds_the_face_in_a_photo_and_refuses_a_bad_face_index(
        encoder_folder: tuple[Path, Path], tmp_path: Path, celeba: Path) -> None:
    _, folder = encoder_folder
    crop = Image.open(celeba / "img_align_celeba" / "182638.jpg").convert("RGB")
    photo = Image.new("RGB", (400, 300), (90, 120, 90))
    photo.paste(crop.rotate(15, resample=Image.Resampling.BILINEAR,
                            fillcolor=(90, 120, 90)), (220, 100))
    path = tmp_path / "party.jpg"
    photo.save(path, quality=95)
    res = CliRunner().invoke(cli, ["encode", str(path), "--out", str(tmp_path / "enc"),
                                   "--encoder", str(folder), "--steps", "0"])
    assert res.exit_code == 0, res.stderr
    meta = json.loads((tmp_path / "enc" / "party.meta.json").read_text())
    assert meta["face"] == 0 and len(meta["faces"]) >= 1
    left, top, right, bottom = meta["faces"][0]["box"]
    assert 220 < (left + right) / 2 < 348 and 100 < (top + bottom) / 2 < 228
    res = CliRunner().invoke(cli, ["encode", str(path), "--out", str(tmp_path / "o"),
                                   "--encoder", str(folder), "--face", "7"])
    assert res.exit_code == 2 and res.stderr.startswith(f"Error: face (photo {path}): "), \
        res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "o" / "party.json").exists()
