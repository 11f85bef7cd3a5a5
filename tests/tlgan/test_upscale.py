"""The face upscaler: network, degradations, metrics, the Upscaler, the registry and
`tlgan sr train` (a few steps on a tiny CelebA-format folder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from training_helpers import make_celeba

from tlgan.cli.main import cli
from tlgan.upscale import degrade, sr_weights
from tlgan.upscale.fidelity import psnr, ssim
from tlgan.upscale.sr_net import SRConfig, SRNet
from tlgan.upscale.sr_weights import UpscalerWeights, load_upscaler
from tlgan.upscale.upscaler import Upscaler, lanczos_upscale
from tlgan_base.artifact import ArtifactError


def _faces(n: int = 3, side: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def test_an_untrained_network_is_plain_bicubic() -> None:
    net = SRNet(SRConfig(channels=8, blocks=2))
    x = torch.rand(2, 3, 12, 10)
    out = net(x)
    assert out.shape == (2, 3, 24, 20)
    bicubic = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic",
                                              align_corners=False)
    assert torch.equal(out, bicubic)


@pytest.mark.parametrize(("field", "value"), [("scale", 5), ("channels", 0), ("blocks", -1)])
def test_sr_config_refuses_bad_shapes(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        SRConfig(**{field: value})


def test_upscaler_doubles_uint8_faces_deterministically_in_any_batching() -> None:
    torch.manual_seed(3)
    net = SRNet(SRConfig(channels=4, blocks=1))
    torch.nn.init.normal_(net.to_pixels.weight, std=0.05)
    faces = _faces(5)
    whole = Upscaler(net, name="t", sha256="0" * 64).upscale(faces)
    chunked = Upscaler(net, name="t", sha256="0" * 64, max_batch=2).upscale(faces)
    assert whole.dtype == np.uint8 and whole.shape == (5, 32, 32, 3)
    assert np.array_equal(whole, chunked)
    assert np.array_equal(whole[1:2], Upscaler(net, name="t", sha256="0" * 64)
                          .upscale(faces[1:2]))
    assert Upscaler(net, name="t", sha256="0" * 64).upscale(faces[:0]).shape == (0, 32, 32, 3)
    with pytest.raises(ValueError, match=r"^images:"):
        Upscaler(net, name="t", sha256="0" * 64).upscale(faces.astype(np.float32))


def test_lanczos_baseline_and_metrics() -> None:
    faces = _faces(2, 16)
    up = lanczos_upscale(faces, 2)
    assert up.shape == (2, 32, 32, 3) and up.dtype == np.uint8
    ref = np.full((2, 8, 8, 3), 100, np.uint8)
    assert np.allclose(psnr(ref + 5, ref), 20 * np.log10(255 / 5))
    assert np.all(psnr(ref, ref) == 100.0)
    assert np.allclose(ssim(faces, faces), 1.0)
    noisy = np.clip(faces.astype(int) + np.random.default_rng(1).integers(-40, 41, faces.shape),
                    0, 255).astype(np.uint8)
    assert np.all(ssim(noisy, faces) < 0.99)
    with pytest.raises(ValueError, match=r"^images:"):
        psnr(faces[:1], faces)


def test_make_pair_degrades_the_input_only_and_quantizes_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    hr = torch.rand(4, 3, 16, 16)
    lr, target = degrade.make_pair(hr, 2, np.random.default_rng(0))
    assert lr.shape == (4, 3, 8, 8) and target.shape == hr.shape
    assert torch.allclose(lr * 255, (lr * 255).round(), atol=1e-4)
    off = {k: {**v, "p": 0.0} for k, v in degrade.DEGRADATIONS.items()}
    monkeypatch.setattr(degrade, "DEGRADATIONS", off)
    lr, target = degrade.make_pair(hr, 2, np.random.default_rng(0))
    assert torch.equal(target, hr)
    box = torch.nn.functional.avg_pool2d(hr, 2)
    assert torch.allclose(lr, (box * 255).round() / 255)
    with pytest.raises(ValueError, match=r"^hr:"):
        degrade.downscale(torch.rand(1, 3, 15, 16), 2)


def _train(data: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["sr", "train", "--data", str(data), "--out", str(out),
                                   "--batch", "2", "--patch", "16", "--resolution", "32",
                                   "--channels", "4", "--blocks", "1", "--eval-every", "3",
                                   "--val-images", "4", "--quiet", *extra])
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sr")
    data = make_celeba(root / "celeba")
    code, _, err = _train(data, root / "sr", "--steps", "3")
    assert code == 0, err
    code, out, err = _train(data, root / "sr", "--steps", "6", "--resume")
    assert code == 0, err
    assert "resumed at step 3" in err
    assert json.loads(out.strip().splitlines()[-1])["steps"] == 6
    return root / "sr"


def test_training_writes_a_checked_folder(trained: Path, tmp_path: Path) -> None:
    config = json.loads((trained / "config.json").read_text())
    assert config["kind"] == "upscaler-weights"
    assert config["data"]["train_images"] == 16 and config["data"]["val_images"] == 4
    assert [h["step"] for h in config["training"]["history"]] == [3, 6]
    assert set(config["degradations"]) == set(degrade.DEGRADATIONS)
    assert {"upscaler.safetensors", "preview.png"} <= set(config["files"])
    assert {"val_psnr", "val_psnr_clean", "val_ssim_clean",
            "val_lanczos_psnr_clean"} <= set(config["metrics"])
    up = load_upscaler(str(trained))
    assert up is not None and up.sha256 == config["files"]["upscaler.safetensors"]
    assert up.describe()["scale"] == 2 and up.upscale(_faces(1)).shape == (1, 32, 32, 3)
    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    (broken / "upscaler.safetensors").write_bytes(b"not weights")
    with pytest.raises(ArtifactError, match="corrupt"):
        load_upscaler(str(broken))
    with pytest.raises(ValueError, match=r"^upscaler:"):
        load_upscaler(str(trained / "nowhere"))


def test_the_registry_refuses_weights_it_does_not_pin(trained: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sr_weights, "WEIGHTS_DIR", trained.parent)
    good = json.loads((trained / "config.json").read_text())["files"]["upscaler.safetensors"]
    monkeypatch.setattr(sr_weights, "UPSCALERS", {
        "pinned": UpscalerWeights("pinned", trained.name, good, source="test"),
        "wrong": UpscalerWeights("wrong", trained.name, "f" * 64, source="test")})
    up = load_upscaler("pinned")
    assert up is not None and up.name == "pinned"
    with pytest.raises(ArtifactError, match="the registry pins ffffffffffff"):
        load_upscaler("wrong")


def test_training_refuses_bad_settings(tmp_path: Path) -> None:
    data = make_celeba(tmp_path / "celeba")
    code, _, err = _train(data, tmp_path / "sr", "--patch", "15")
    assert code == 2 and "patch:" in err


def test_for_size_upscales_only_large_sizes() -> None:
    from tlgan.testing import tiny_upscaler
    from tlgan.upscale.upscaler import for_size

    up = tiny_upscaler(0)
    faces = _faces(2, 64)
    for size in (None, 64, 96, 127):
        assert for_size(up, faces, size) is faces
    assert for_size(None, faces, 256) is faces
    big = for_size(up, faces, 128)
    assert big.shape == (2, 128, 128, 3) and np.array_equal(big, up.upscale(faces))
    assert for_size(up, faces, 384).shape == (2, 128, 128, 3)  # one pass; Lanczos does the rest


def test_load_upscaler_for_loads_nothing_it_does_not_need() -> None:
    from tlgan.assembly import load_upscaler_for

    assert load_upscaler_for("no-such-upscaler", 96) is None
    assert load_upscaler_for("no-such-upscaler", None) is None
    assert load_upscaler_for("none", 512) is None
    with pytest.raises(ValueError, match=r"^upscaler: 'no-such-upscaler' is neither"):
        load_upscaler_for("no-such-upscaler", 128)


def test_every_registered_upscaler_loads_as_pinned() -> None:
    from tlgan.catalog import describe_all

    assert sr_weights.DEFAULT is None or sr_weights.DEFAULT in sr_weights.UPSCALERS
    assert [u["name"] for u in describe_all()["upscalers"]] == list(sr_weights.UPSCALERS)
    for name, entry in sr_weights.UPSCALERS.items():
        up = load_upscaler(name)
        assert up is not None and up.name == name and up.sha256 == entry.sha256
        assert up.config["metrics"]["val_psnr_clean"] > up.config["metrics"][
            "val_lanczos_psnr_clean"]
        assert up.upscale(_faces(1, 64)).shape == (1, 64 * up.scale, 64 * up.scale, 3)
    default = load_upscaler(None)
    assert (default is None) == (sr_weights.DEFAULT is None)


def test_generate_cli_upscales_at_large_sizes(trained: Path, tmp_path: Path) -> None:
    from PIL import Image

    def run(size: int, upscaler: str) -> np.ndarray:
        out = tmp_path / f"{size}-{Path(upscaler).name}"
        res = CliRunner().invoke(cli, ["generate", "--seeds", "3", "--out", str(out),
                                       "--size", str(size), "--upscaler", upscaler])
        assert res.exit_code == 0, res.stderr
        with Image.open(out / "seed0003.png") as im:
            assert im.size == (size, size)
            return np.asarray(im)

    assert not np.array_equal(run(128, str(trained)), run(128, "none"))
    assert np.array_equal(run(96, str(trained)), run(96, "none"))
