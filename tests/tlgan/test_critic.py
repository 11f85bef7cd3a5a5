"""The realism critic: the network, the RealismScorer contract, its weights folder and
registry, and `tlgan critic train` on a tiny CelebA-format folder (a few steps)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from tlgan.critic.critic import Critic
from tlgan.critic.critic_net import CriticConfig, CriticNet
from tlgan.testing import tiny_critic, tiny_generator
from tlgan_base.artifact import ArtifactError
from tlgan_base.protocols import RealismScorer


def test_the_critic_is_a_realism_scorer_with_matching_score_and_score_tensor() -> None:
    gen = tiny_generator()
    critic = tiny_critic(gen)
    scorer: RealismScorer = critic  # the protocol, checked by mypy
    assert scorer.resolution == 64 and scorer.generator_sha256 == gen.sha256
    z = gen.sample_latents(range(6))
    faces = gen.render(z)
    scores = critic.score(faces)
    assert scores.dtype == np.float64 and scores.shape == (6,)
    assert np.ptp(scores) > 0  # a random critic still tells faces apart
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255.0
    x.requires_grad_(True)
    t = critic.score_tensor(x)
    np.testing.assert_allclose(t.detach().double().numpy(), scores, atol=1e-5)
    t.sum().backward()  # differentiable with respect to the images
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert critic.score(faces[:0]).shape == (0,)


@pytest.mark.parametrize("bad", [np.zeros((2, 64, 64, 3), np.float32),
                                 np.zeros((2, 32, 32, 3), np.uint8),
                                 np.zeros((64, 64, 3), np.uint8)])
def test_score_refuses_what_is_not_uint8_faces_naming_images(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"^images:"):
        tiny_critic(tiny_generator()).score(bad)


def test_critic_config_validates_and_round_trips() -> None:
    cfg = CriticConfig(width=8)
    assert CriticConfig.from_dict(cfg.as_dict()) == cfg
    for bad in ({"width": 0}, {"arch": "vit"}, {"norm": "layer"}, {"resolution": 128}):
        with pytest.raises(ValueError, match=rf"^{next(iter(bad))}:"):
            CriticConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^images:"):
        CriticNet(cfg)(torch.zeros(1, 3, 32, 32))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from test_encoder_training import make_celeba

    from tlgan.cli.main import cli

    root = tmp_path_factory.mktemp("critic")
    data = make_celeba(root / "celeba")
    args = ["critic", "train", "--data", str(data), "--out", str(root / "critic"),
            "--batch", "4", "--width", "4", "--eval-every", "3", "--val-images", "4",
            "--quiet", "--threads", "1"]
    res = CliRunner().invoke(cli, [*args, "--steps", "3"])
    assert res.exit_code == 0, res.stderr
    res = CliRunner().invoke(cli, [*args, "--steps", "6", "--resume"])
    assert res.exit_code == 0, res.stderr
    assert "resumed at step 3" in res.stderr
    summary = json.loads(res.stdout)
    assert summary["steps"] == 6 and 0.0 <= summary["val_auc"] <= 1.0
    return data, root / "critic"


@pytest.mark.slow
def test_training_writes_a_checked_folder_tied_to_the_generator(trained: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    from tlgan.critic.critic_weights import load_critic
    from tlgan.generators import load_generator

    _data, folder = trained
    config = json.loads((folder / "config.json").read_text())
    gen = load_generator(None, "cpu")
    assert config["kind"] == "critic-weights"
    assert config["generator"]["sha256"] == gen.sha256
    assert config["data"]["train_partition"] == 0 and config["data"]["val_partition"] == 1
    assert config["recipe"]["augment"] == "translation,color,cutout"
    assert [e["step"] for e in config["training"]["history"]] == [3, 6]
    assert (folder / "ranked.png").is_file()
    critic = load_critic(folder, gen)
    assert isinstance(critic, Critic) and critic.sha256 == config["files"]["critic.safetensors"]
    faces = gen.render(gen.sample_latents([1, 2]))
    assert np.array_equal(critic.score(faces), critic.score(faces))  # deterministic
    with pytest.raises(ArtifactError, match="trained for generator"):
        load_critic(folder, tiny_generator())
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "critic.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ArtifactError):
        load_critic(broken, gen)


@pytest.mark.slow
def test_resume_refuses_another_recipe(trained: tuple[Path, Path]) -> None:
    from tlgan.cli.main import cli

    data, folder = trained
    res = CliRunner().invoke(cli, ["critic", "train", "--data", str(data), "--out",
                                   str(folder), "--batch", "4", "--width", "8", "--steps", "9",
                                   "--eval-every", "3", "--val-images", "4", "--quiet",
                                   "--resume"])
    assert res.exit_code == 2 and "another recipe" in res.stderr


def test_train_refuses_bad_options_naming_them(tmp_path: Path) -> None:
    from tlgan.cli.main import cli

    for opt, val, name in (("--augment", "blur", "augment"), ("--batch", "0", "batch"),
                           ("--lr", "-1", "lr")):
        res = CliRunner().invoke(cli, ["critic", "train", "--data", str(tmp_path), "--out",
                                       str(tmp_path / "o"), opt, val])
        assert res.exit_code == 2 and f"{name}:" in res.stderr, res.stderr


@pytest.mark.slow
def test_cli_generate_ranks_with_a_critic_and_raw_is_todays_faces(
        trained: tuple[Path, Path], tmp_path: Path) -> None:
    from tlgan.cli.main import cli
    from tlgan.critic.critic_weights import load_critic
    from tlgan.generators import load_generator
    from tlgan.pipeline import Models
    from tlgan.pipeline.ranking import seeded_latents

    _data, folder = trained
    runner = CliRunner()

    def run(out: str, *extra: str) -> None:
        res = runner.invoke(cli, ["generate", "--seeds", "1-4", "--out", str(tmp_path / out),
                                  *extra])
        assert res.exit_code == 0, res.output

    run("raw", "--quality", "raw")
    run("none", "--critic", "none")  # no critic: the default is raw
    gen = load_generator(None, "cpu")
    today = gen.render(gen.sample_latents(range(1, 5)))
    for i in range(4):
        for out in ("raw", "none"):
            meta = json.loads((tmp_path / out / f"seed000{i + 1}.json").read_text())
            assert "candidate" not in meta
            assert np.array_equal(np.asarray(meta["latent"], np.float32),
                                  gen.sample_latents([i + 1])[0])
            png = np.asarray(Image.open(tmp_path / out / f"seed000{i + 1}.png").convert("RGB"))
            assert np.array_equal(png, today[i])  # the raw face, pixel for pixel
    run("ranked", "--quality", "ranked", "--candidates", "3", "--critic", str(folder))
    run("again", "--quality", "ranked", "--candidates", "3", "--critic", str(folder))
    want = seeded_latents(Models(gen, critic=load_critic(folder, gen)), [1, 2, 3, 4], 1.0,
                          "ranked", 3)
    assert want.chosen is not None
    for i in range(4):
        name = f"seed000{i + 1}"
        meta = json.loads((tmp_path / "ranked" / f"{name}.json").read_text())
        assert meta["quality"] == "ranked" and meta["candidates"] == 3
        assert meta["candidate"] == int(want.chosen[i])
        assert np.array_equal(np.asarray(meta["latent"], np.float32), want.latents[i])
        assert (tmp_path / "ranked" / f"{name}.png").read_bytes() == \
            (tmp_path / "again" / f"{name}.png").read_bytes()
    res = runner.invoke(cli, ["generate", "--seeds", "1", "--out", str(tmp_path / "x"),
                              "--quality", "ranked", "--critic", "none"])
    assert res.exit_code == 2 and "quality:" in res.output
    res = runner.invoke(cli, ["generate", "--seeds", "1", "--out", str(tmp_path / "x"),
                              "--candidates", "1"])
    assert res.exit_code == 2 and "candidates" in res.output


def test_break_faces_damages_every_face_deterministically() -> None:
    from tlgan.critic.breakage import break_faces

    gen = tiny_generator()
    x = gen.render_tensor(gen.sample_latents(range(6))) * 2 - 1
    a = break_faces(x, torch.Generator().manual_seed(3))
    b = break_faces(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert float(a.min()) >= -1.0 - 1e-5 and float(a.max()) <= 1.0 + 1e-5
    changed = (a - x).abs().flatten(1).mean(1)
    assert bool((changed > 1e-3).all())  # every face is damaged, warped or melted
    with pytest.raises(ValueError, match=r"^images:"):
        break_faces(torch.zeros(2, 64, 64), torch.Generator())


@pytest.mark.slow
def test_training_with_broken_reals_validates_on_them_too(tmp_path: Path) -> None:
    from test_encoder_training import make_celeba

    from tlgan.cli.main import cli

    data = make_celeba(tmp_path / "celeba")
    res = CliRunner().invoke(cli, ["critic", "train", "--data", str(data), "--out",
                                   str(tmp_path / "c"), "--batch", "4", "--width", "4",
                                   "--eval-every", "2", "--val-images", "4", "--steps", "2",
                                   "--broken", "0.5", "--quiet", "--threads", "1"])
    assert res.exit_code == 0, res.stderr
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config["recipe"]["broken"] == 0.5
    assert "broken partition-1 crops" in config["data"]["val_fakes"]
    res = CliRunner().invoke(cli, ["critic", "train", "--data", str(data), "--out",
                                   str(tmp_path / "d"), "--broken", "1.5"])
    assert res.exit_code == 2 and "broken:" in res.stderr
