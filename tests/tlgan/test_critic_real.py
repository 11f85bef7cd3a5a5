"""The registered realism critics against the models they build and the generators they were
trained for (like the generator and encoder registry tests); the shipped discriminator's
ranking of held-out real crops above generated faces; the shipped taught critic against the
marks it was taught on."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tlgan.catalog import describe_all
from tlgan.critic.critic import Critic
from tlgan.critic.critic_weights import (
    CRITICS,
    DEFAULT,
    DISCRIMINATOR,
    load_critic,
    registered_for,
)
from tlgan.critic.taught import HEAD_FILE, KIND, TaughtCritic, read_marks
from tlgan.generators import GENERATORS, load_generator
from tlgan_base.artifact import ArtifactError, load_config, sha256_file
from tlgan_base.classifier_metrics import roc_auc

MARKS = Path(__file__).resolve().parents[2] / "tlgan" / "critic" / "marks" / \
    "celeba-dcgan64-broken-marks.json"

pytestmark = pytest.mark.real_weights


def test_the_default_generator_has_the_default_critic() -> None:
    gen = load_generator(None)
    entry = registered_for(gen)
    assert entry is not None and entry.name == DEFAULT and entry.generator == gen.name
    assert [c["name"] for c in describe_all()["critics"]] == sorted(CRITICS)
    assert [c["default"] for c in describe_all()["critics"]] == \
        [n == DEFAULT for n in sorted(CRITICS)]


def _kind(name: str) -> str:
    return str(load_config(CRITICS[name].path, verify=False)["kind"])


@pytest.mark.parametrize("name", sorted(n for n in CRITICS if _kind(n) == "critic-weights"))
def test_every_registered_critic_matches_the_model_it_builds(name: str) -> None:
    entry = CRITICS[name]
    assert entry.generator_sha256 == GENERATORS[entry.generator].sha256
    config = load_config(entry.path, kind="critic-weights", verify=True)
    assert config["files"]["critic.safetensors"] == entry.sha256
    assert config["generator"] == {"name": entry.generator, "sha256": entry.generator_sha256}
    gen = load_generator(entry.generator)
    critic = load_critic(name, gen)
    assert critic is not None and critic.sha256 == entry.sha256 and critic.name == name
    assert critic.generator_sha256 == gen.sha256 and critic.resolution == gen.resolution
    assert sum(p.numel() for p in critic.network.parameters()) == config["parameters"]
    assert set(config["metrics"]) >= {"val_loss", "val_auc", "val_accuracy"}
    assert config["data"]["train_partition"] == 0 and config["data"]["val_partition"] == 1


@pytest.mark.parametrize("name", sorted(n for n in CRITICS if _kind(n) == KIND))
def test_every_registered_taught_critic_matches_the_head_it_builds(name: str) -> None:
    entry = CRITICS[name]
    assert entry.generator_sha256 == GENERATORS[entry.generator].sha256
    config = load_config(entry.path, kind=KIND, verify=True)
    assert config["files"][HEAD_FILE] == entry.sha256
    assert config["generator"] == {"name": entry.generator, "sha256": entry.generator_sha256}
    gen = load_generator(entry.generator)
    critic = load_critic(name, gen)
    assert isinstance(critic, TaughtCritic) and critic.sha256 == entry.sha256
    assert critic.name == name and critic.generator_sha256 == gen.sha256
    assert critic.layer == config["layer"] and critic.weights.shape == (config["features"],)
    grid = config["selection"]["grid"]
    assert max(g["cv_auc"] for g in grid) == config["metrics"]["cv_auc"]
    assert config["metrics"]["cv_auc_interval95"][0] > config["selection"]["min_auc"]


def test_the_shipped_taught_critic_was_taught_on_the_shipped_marks() -> None:
    """Its config names the marks file in the package by sha256, and refitted on those
    marks it scores them as it was taught: fine faces above broken ones."""
    gen = load_generator(None)
    critic = load_critic(None, gen)
    assert isinstance(critic, TaughtCritic) and critic.name == DEFAULT
    marks = read_marks(MARKS, gen)
    cfg = critic.config["marks"]
    assert cfg["sha256"] == sha256_file(MARKS) == marks.sha256
    assert (cfg["faces"], cfg["broken"]) == (len(marks.seeds), int(marks.broken.sum()))
    scores = critic.score_latents(gen.sample_latents(marks.seeds.tolist(), marks.truncation))
    auc = roc_auc(~marks.broken, scores)
    assert auc is not None and auc > critic.config["metrics"]["cv_auc"]  # in-sample


@pytest.mark.parametrize("name", sorted(CRITICS))
def test_a_critic_refuses_another_generator_and_a_wrong_checksum(name: str,
                                                                 tmp_path: Path) -> None:
    others = [g for g in GENERATORS if g != CRITICS[name].generator]
    other = load_generator(others[0])
    with pytest.raises(ArtifactError, match="was trained for generator"):
        load_critic(name, other)
    assert registered_for(other) is None or registered_for(other) is not CRITICS[name]
    folder = tmp_path / "critic"
    shutil.copytree(CRITICS[name].path, folder)
    weights = HEAD_FILE if _kind(name) == KIND else "critic.safetensors"
    with (folder / weights).open("r+b") as fh:  # flip one byte of a weight
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(ArtifactError):
        load_critic(folder, load_generator(CRITICS[name].generator))


def test_the_shipped_critic_ranks_real_crops_above_generated_faces() -> None:
    """Its own validation figure, recomputed: partition-1 crops score above the generator's
    faces of the validation seeds (the figure is in its config.json)."""
    gen = load_generator(None)
    critic = load_critic(DISCRIMINATOR, gen)
    assert isinstance(critic, Critic)
    auc = critic.config["metrics"]["val_auc"]
    assert 0.75 <= auc <= 1.0
    fakes = gen.render(gen.sample_latents(range(1_000_000, 1_000_064)))
    scores = critic.score(fakes)
    assert np.isfinite(scores).all() and np.ptp(scores) > 0.5
    assert np.array_equal(scores, critic.score(fakes))
