"""Generator interface, registry and plug-in path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from tlgan.generators import DEFAULT, GENERATORS, load_generator
from tlgan.generators.generator_weights import GeneratorWeights
from tlgan.latents import sample_latents
from tlgan.testing import tiny_generator
from tlgan_base.artifact import ArtifactError, sha256_file
from tlgan_base.image_codec import encode_image


def test_render_shapes_range_and_batching() -> None:
    gen = tiny_generator(max_batch=3)
    z = sample_latents(range(7), gen.latent_size)
    images = gen.render(z)
    assert images.shape == (7, 64, 64, 3) and images.dtype == np.uint8
    # batched internally in chunks of 3: each face equals the face rendered alone
    alone = np.concatenate([gen.render(z[i : i + 1]) for i in range(7)])
    assert np.array_equal(images, alone)
    assert gen.render(np.zeros((0, gen.latent_size), np.float32)).shape == (0, 64, 64, 3)


@pytest.mark.parametrize("bad", [np.zeros((2, 5)), np.full((1, 16), np.nan), np.zeros(16)])
def test_render_rejects_bad_latents(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="z"):
        tiny_generator().render(bad.astype(np.float32))


def test_dcgan_first_layer_as_matmul_equals_the_transposed_convolution() -> None:
    from tlgan.generators.dcgan import DCGANGenerator

    torch.manual_seed(0)
    g = DCGANGenerator(nz=10, ngf=8).eval()
    for n in (1, 5):
        z = torch.randn(n, 10)
        with torch.inference_mode():
            ref = g.main(z[:, :, None, None])  # the plain nn.Sequential, conv-transpose first
            assert torch.allclose(g(z), ref, atol=1e-6)
            assert torch.allclose(g(z[:, :, None, None]), ref, atol=1e-6)
    # at inference every face is computed exactly as if rendered alone, whatever the batch
    g = DCGANGenerator(nz=100, ngf=8).eval()
    z = torch.randn(64, 100)
    with torch.inference_mode():
        batch = g(z)
        assert all(torch.equal(batch[i:i + 1], g(z[i:i + 1])) for i in range(64))
    # new weights are used at once (the float64 copy of the first layer follows them)
    other = DCGANGenerator(nz=100, ngf=8).eval()
    with torch.inference_mode():
        g.load_state_dict(other.state_dict())
        assert torch.equal(g(z[:2]), other(z[:2])) and not torch.equal(g(z[:2]), batch[:2])
    z = torch.randn(3, 10, requires_grad=True)
    g = DCGANGenerator(nz=10, ngf=8)
    g.train()(z).sum().backward()  # trainable through the same path
    assert z.grad is not None and g.main[0].weight.grad is not None


def test_default_is_registered() -> None:
    assert DEFAULT in GENERATORS


@pytest.mark.real_weights
@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_registry_entry_matches_the_model_it_builds(name: str) -> None:
    entry = GENERATORS[name]
    assert len(entry.sha256) == 64 and entry.licence and entry.source
    gen = load_generator(name, "cpu")
    assert gen.latent_size == entry.latent_size
    assert gen.resolution == entry.resolution
    z = sample_latents([0, 1, 2, 3], gen.latent_size)
    with torch.inference_mode():
        raw = gen.module(torch.as_tensor(z))
    assert tuple(raw.shape) == (4, 3, entry.resolution, entry.resolution)
    lo, hi = entry.value_range
    assert float(raw.min()) >= lo - 1e-5 and float(raw.max()) <= hi + 1e-5


@pytest.mark.real_weights
def test_default_generator_renders_varied_faces_deterministically() -> None:
    gen = load_generator(None, "cpu")
    z = sample_latents(range(8), gen.latent_size)
    a = gen.render(z)
    assert a.shape == (8, 64, 64, 3)
    assert a.std() > 30  # not constant
    assert np.abs(a[0].astype(int) - a[1].astype(int)).mean() > 10  # faces differ
    png1 = encode_image(load_generator(None, "cpu").render(z[:1])[0], "png")
    png2 = encode_image(a[0], "png")
    assert png1 == png2
    assert Image.open(io.BytesIO(png1)).size == (64, 64)


def test_missing_distribution_gives_one_clear_sentence() -> None:
    entry = GeneratorWeights(
        name="ghost", location="dist:no-such-dist==1.0:x/weights.tar", sha256="0" * 64,
        architecture="dcgan", latent_size=100, resolution=64, value_range=(-1, 1),
        licence="MIT", source="nowhere",
    )
    with pytest.raises(ArtifactError, match=r"pip install --no-deps no-such-dist==1.0"):
        entry.locate()


def test_unknown_generator_name() -> None:
    with pytest.raises(ValueError, match="generator: 'nope'"):
        load_generator("nope")


def _plugin(tmp_path: Path, **fields: object) -> Path:
    """A plug-in JSON; ``sha256`` defaults to the weights file's (when it exists)."""
    cfg = {"kind": "generator-plugin", "name": "mine", "latent_size": 16, "resolution": 64,
           "value_range": [-1, 1], **fields}
    weights = tmp_path / str(fields.get("file", ""))
    if "sha256" not in cfg and weights.is_file():
        cfg["sha256"] = sha256_file(weights)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(cfg))
    return path


def test_plugin_torchscript_round_trip(tmp_path: Path) -> None:
    """docs/models.md's worked example: export to TorchScript, load through the plug-in path."""
    gen = tiny_generator()
    traced = torch.jit.trace(gen.module, torch.zeros(1, gen.latent_size))
    traced.save(str(tmp_path / "mine.pt"))
    cfg = _plugin(tmp_path, format="torchscript", file="mine.pt",
                  sha256=sha256_file(tmp_path / "mine.pt"))
    loaded = load_generator(str(cfg))
    z = sample_latents(range(5), 16)
    assert np.array_equal(loaded.render(z), gen.render(z))


def test_plugin_state_dict_round_trip(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    gen = tiny_generator()
    save_file(gen.module.state_dict(), str(tmp_path / "g.safetensors"))
    cfg = _plugin(tmp_path, format="state_dict", file="g.safetensors",
                  module="tlgan.generators.dcgan:DCGANGenerator", kwargs={"nz": 16, "ngf": 4})
    z = sample_latents(range(3), 16)
    assert np.array_equal(load_generator(str(cfg)).render(z), gen.render(z))


def test_plugin_checksum_mismatch_and_wrong_resolution(tmp_path: Path) -> None:
    gen = tiny_generator()
    torch.jit.trace(gen.module, torch.zeros(1, 16)).save(str(tmp_path / "mine.pt"))
    with pytest.raises(ArtifactError, match="sha256"):
        load_generator(str(_plugin(tmp_path, format="torchscript", file="mine.pt",
                                   sha256="f" * 64)))
    with pytest.raises(ArtifactError, match=r"expected \(1, 3, 128, 128\)"):
        load_generator(str(_plugin(tmp_path, format="torchscript", file="mine.pt",
                                   resolution=128)))
    with pytest.raises(ArtifactError, match="missing"):
        load_generator(str(_plugin(tmp_path, format="torchscript", file="absent.pt")))


def test_plugin_without_sha256_is_refused(tmp_path: Path) -> None:
    """The checksum is what catches a corrupt or swapped weights file: it is required."""
    gen = tiny_generator()
    torch.jit.trace(gen.module, torch.zeros(1, 16)).save(str(tmp_path / "mine.pt"))
    for bad in (None, "", "abc", 64):
        cfg = json.loads(_plugin(tmp_path, format="torchscript", file="mine.pt").read_text())
        if bad is None:
            del cfg["sha256"]
        else:
            cfg["sha256"] = bad
        (tmp_path / "mine.json").write_text(json.dumps(cfg))
        with pytest.raises(ArtifactError, match="'sha256'"):
            load_generator(str(tmp_path / "mine.json"))
    from tlgan.cli.main import cli

    res = CliRunner().invoke(cli, ["generate", "--seeds", "1", "--out", str(tmp_path / "out"),
                                   "--generator", str(tmp_path / "mine.json")])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln]
    assert len(lines) == 1 and "sha256" in lines[0] and "Traceback" not in res.output


def test_corrupt_registered_weights_refuse(tmp_path: Path) -> None:
    bad = tmp_path / "generator.safetensors"
    bad.write_bytes(b"not weights")
    entry = GeneratorWeights(
        name="corrupt", location=f"folder:{tmp_path}", sha256="0" * 64, architecture="dcgan",
        latent_size=100, resolution=64, value_range=(-1, 1), licence="MIT", source="test",
    )
    from tlgan.generators.generator_weights import load_registered

    with pytest.raises(ArtifactError, match="expected 000000000000"):
        load_registered(entry, torch.device("cpu"), 8)


def test_plugin_torch_export_round_trip(tmp_path: Path) -> None:
    gen = tiny_generator()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(gen.module, (torch.zeros(2, 16),),
                                  dynamic_shapes={"z": {0: batch}})
    torch.export.save(program, str(tmp_path / "mine.pt2"))
    cfg = _plugin(tmp_path, format="torch-export", file="mine.pt2")
    z = sample_latents(range(4), 16)
    np.testing.assert_allclose(load_generator(str(cfg)).render(z).astype(int),
                               gen.render(z).astype(int), atol=1)


@pytest.mark.real_weights
def test_default_is_the_shipped_celeba_generator_with_truthful_provenance() -> None:
    from tlgan_base.artifact import load_config

    assert DEFAULT == "celeba-dcgan64"
    entry = GENERATORS[DEFAULT]
    path = entry.locate()
    # shipped inside this package (a fresh clone needs nothing beside it)
    assert Path(__file__).resolve().parents[2] / "tlgan" in path.resolve().parents
    cfg = load_config(path.parent, kind="generator-weights")  # verifies every file's sha256
    assert cfg["files"]["generator.safetensors"] == entry.sha256
    assert "NOT trained by `tlgan generator train`" in cfg["created_by"]
    assert "partition 0" in cfg["data"]["dataset"]
    assert "non-commercial research" in cfg["licence"]
    assert cfg["architecture"]["kwargs"] == entry.arch_kwargs
    gen = load_generator(None, "cpu")
    assert gen.name == "celeba-dcgan64" and gen.sha256 == entry.sha256
    # seed-stable: the same seeds give the same faces, whatever the batch they are drawn in
    z = sample_latents([42, 7, 0], gen.latent_size)
    together = gen.render(z)
    alone = np.concatenate([load_generator(None, "cpu").render(z[i:i + 1]) for i in range(3)])
    assert np.array_equal(together, alone)
    # pinned pixels (to within half a level on average, for other CPUs' float rounding): a
    # change of weights, latents or rendering shows up here
    assert together.dtype == np.uint8 and together.std() > 30
    assert abs(int(together[0].astype(np.int64).sum()) - 1_685_093) <= 64 * 64 * 3 // 2


def test_digiface_generator_stays_registered() -> None:
    assert "dcgan-digiface64" in GENERATORS and GENERATORS["dcgan-digiface64"].location.startswith(
        "dist:gan-face-generate==1.1.1:")
