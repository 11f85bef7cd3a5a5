"""The taught critic (tlgan.critic.taught, `tlgan critic teach`): marks read and refused,
layer and C chosen by cross-validation, a head saved atomically and refused near chance,
scores of latents (numpy and differentiable) that are minus the head's logit of broken;
and the one latent interface of both critics (tlgan_base.protocols.LatentRealismScorer)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tlgan.cli.main import cli
from tlgan.critic.critic import Critic
from tlgan.critic.critic_weights import load_critic
from tlgan.critic.taught import (
    HEAD_FILE,
    KIND,
    TaughtCritic,
    feature_stats,
    latent_features,
    read_marks,
    teach_critic,
)
from tlgan.generators.base import FaceGenerator
from tlgan.pipeline import Pipeline
from tlgan.testing import tiny_critic, tiny_generator
from tlgan_base.artifact import ArtifactError, load_config
from tlgan_base.classifier_metrics import roc_auc
from tlgan_base.protocols import LatentRealismScorer

SEEDS = range(1, 121)


def _write_marks(path: Path, generator: FaceGenerator, broken: np.ndarray,
                 sha256: str | None = None) -> Path:
    path.write_text(json.dumps({
        "generator": generator.name, "generator_sha256": sha256 or generator.sha256,
        "truncation": 1.0, "how": "made up for a test",
        "seeds": {str(s): bool(b) for s, b in zip(SEEDS, broken, strict=True)}}))
    return path


def _learnable(generator: FaceGenerator) -> np.ndarray:
    """Marks a head can learn: broken = the first ReLU's channel-0 mean above its median."""
    f = latent_features(generator, generator.sample_latents(SEEDS), 0)[:, 0]
    return np.asarray(f > np.median(f))


@pytest.fixture(scope="module")
def gen() -> FaceGenerator:
    return tiny_generator(0)


@pytest.fixture(scope="module")
def taught(gen: FaceGenerator, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("taught")
    marks = _write_marks(root / "marks.json", gen, _learnable(gen))
    config = teach_critic(marks, root / "critic", gen, layers=(0, 1), cs=(0.1, 1.0))
    return root, config


def test_features_are_the_relu_outputs_channel_mean_and_std(gen: FaceGenerator) -> None:
    z = torch.as_tensor(gen.sample_latents([1, 2, 3]))
    seen: list[torch.Tensor] = []
    relu = [m for m in gen.module.modules() if isinstance(m, torch.nn.ReLU)][1]
    hook = relu.register_forward_hook(lambda _m, _i, o: seen.append(o.clone()))
    with torch.no_grad():
        gen.module(z)
        got = feature_stats(gen, z, 1)
    hook.remove()
    expect = torch.cat([seen[0].mean((2, 3)), seen[0].std((2, 3))], 1)
    assert got.shape == (3, 2 * seen[0].shape[1])
    assert torch.allclose(got, expect, atol=1e-6)
    with pytest.raises(ValueError, match=r"^layer: .*ReLU layers 0\.\.3, got 4"):
        feature_stats(gen, z, 4)


def test_teach_picks_layer_and_c_by_cv_and_saves_the_head(
        gen: FaceGenerator, taught: tuple[Path, dict[str, object]]) -> None:
    root, config = taught
    folder = root / "critic"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", HEAD_FILE]
    assert load_config(folder, kind=KIND, verify=True) == config
    grid = config["selection"]["grid"]  # type: ignore[index]
    assert [(g["layer"], g["C"]) for g in grid] == [(0, 0.1), (0, 1.0), (1, 0.1), (1, 1.0)]
    best = max(grid, key=lambda g: g["cv_auc"])
    assert (config["layer"], config["C"]) == (best["layer"], best["C"])
    metrics = config["metrics"]
    assert metrics["cv_auc"] == best["cv_auc"] > 0.8  # type: ignore[index]
    lo, hi = metrics["cv_auc_interval95"]  # type: ignore[index]
    assert 0.6 < lo <= metrics["cv_auc"] <= hi <= 1.0  # type: ignore[index]
    assert len(metrics["fold_aucs"]) == 5  # type: ignore[index]
    marks = config["marks"]
    assert marks["faces"] == len(SEEDS) and marks["broken"] == len(SEEDS) // 2  # type: ignore[index]
    assert config["generator"] == {"name": gen.name, "sha256": gen.sha256}
    # deterministic: the same marks give the same head, byte for byte
    again = teach_critic(root / "marks.json", root / "again", gen, layers=(0, 1),
                         cs=(0.1, 1.0))
    assert again["files"] == config["files"]


def test_the_taught_critic_scores_minus_the_logit_of_broken(
        gen: FaceGenerator, taught: tuple[Path, dict[str, object]]) -> None:
    root, config = taught
    critic = load_critic(root / "critic", gen)
    assert isinstance(critic, TaughtCritic)
    scorer: LatentRealismScorer = critic  # the protocol ranking uses (checked by mypy)
    assert critic.sha256 == config["files"][HEAD_FILE]  # type: ignore[index]
    assert critic.describe()["kind"] == KIND and critic.generator_sha256 == gen.sha256
    z = gen.sample_latents(SEEDS)
    scores = scorer.score_latents(z)
    f = latent_features(gen, z, critic.layer)
    logit = ((f - critic.mean) / critic.scale) @ critic.weights + critic.bias
    assert scores.dtype == np.float64 and np.allclose(scores, -logit)
    broken = read_marks(root / "marks.json", gen).broken
    assert roc_auc(~broken, scores) > 0.9  # fine faces above broken ones
    zt = torch.as_tensor(z[:5]).requires_grad_(True)
    st = critic.score_latents_tensor(zt)
    assert torch.allclose(st.double(), torch.as_tensor(scores[:5]), atol=1e-4)
    st.sum().backward()
    assert zt.grad is not None and float(zt.grad.abs().sum()) > 0
    assert critic.score_latents(z[:0]).shape == (0,)
    with pytest.raises(ValueError, match=r"^space:"):
        critic.score_latents(z, "w")


def test_marks_of_another_generator_near_chance_marks_and_bad_files_are_refused(
        gen: FaceGenerator, tmp_path: Path) -> None:
    other = _write_marks(tmp_path / "other.json", gen, _learnable(gen), sha256="1" * 64)
    with pytest.raises(ValueError, match=r"^marks: .* not of 'tiny-dcgan'"):
        teach_critic(other, tmp_path / "out", gen)
    rng = np.random.default_rng(0)
    noise = _write_marks(tmp_path / "noise.json", gen, rng.random(len(SEEDS)) < 0.5)
    with pytest.raises(ValueError, match=r"^marks: .*near chance.*nothing saved"):
        teach_critic(noise, tmp_path / "out", gen, layers=(0,), cs=(0.1,))
    assert not (tmp_path / "out").exists()
    one = _write_marks(tmp_path / "one.json", gen, np.zeros(len(SEEDS), bool))
    with pytest.raises(ValueError, match=r"^marks: .*both broken and fine"):
        read_marks(one, gen)
    with pytest.raises(ValueError, match=r"^cs:"):
        teach_critic(noise, tmp_path / "out", gen, cs=(0.0,))


def test_a_taught_critic_refuses_another_generator_and_a_corrupt_head(
        gen: FaceGenerator, taught: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    root, _ = taught
    with pytest.raises(ArtifactError, match="was trained for generator"):
        load_critic(root / "critic", dataclasses.replace(gen, sha256="2" * 64))
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in (root / "critic").iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    with (bad / HEAD_FILE).open("r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(ArtifactError, match="corrupt"):
        load_critic(bad, gen)


def test_cli_teach_prints_the_figures_and_writes_the_folder(
        gen: FaceGenerator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tlgan.generators as generators

    monkeypatch.setattr(generators, "load_generator", lambda *_a, **_k: gen)
    marks = _write_marks(tmp_path / "marks.json", gen, _learnable(gen))
    res = CliRunner().invoke(cli, ["critic", "teach", "--marks", str(marks), "--out",
                                   str(tmp_path / "c"), "--layers", "0", "--cs", "0.1,1"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["layer"] == 0 and out["C"] in (0.1, 1.0) and out["cv_auc"] > 0.8
    assert (tmp_path / "c" / HEAD_FILE).is_file()
    res = CliRunner().invoke(cli, ["critic", "teach", "--marks", str(marks), "--out",
                                   str(tmp_path / "d"), "--cs", "x"])
    assert res.exit_code == 2 and "--cs" in res.output


def test_the_discriminator_critic_scores_latents_by_rendering_them(
        ranked_pipeline: Pipeline) -> None:
    critic = ranked_pipeline.critic
    assert isinstance(critic, Critic)
    gen = ranked_pipeline.generator
    z = gen.sample_latents(range(8))
    scores = critic.score_latents(z)
    assert np.array_equal(scores, critic.score(gen.render(z)))
    zt = torch.as_tensor(z).requires_grad_(True)
    st = critic.score_latents_tensor(zt)
    assert torch.allclose(st.double(), torch.as_tensor(scores), atol=0.05)
    st.sum().backward()
    assert zt.grad is not None and float(zt.grad.abs().sum()) > 0
    unbound = tiny_critic(gen)
    unbound.generator = None
    with pytest.raises(ValueError, match=r"^z: .*bound to no generator"):
        unbound.score_latents(z)


def test_ranking_with_a_taught_critic_keeps_the_best_scored_candidate(
        tiny_pipeline: Pipeline, tmp_path: Path) -> None:
    gen = tiny_pipeline.generator
    marks = _write_marks(tmp_path / "marks.json", gen, _learnable(gen))
    teach_critic(marks, tmp_path / "c", gen, layers=(0,), cs=(1.0,))
    critic = load_critic(tmp_path / "c", gen)
    pipe = Pipeline(generator=gen, extractor=tiny_pipeline.extractor,
                    bundle=tiny_pipeline.bundle, critic=critic)
    got = pipe.seeded_latents([3, 4, 5], 1.0, "ranked", 4)
    assert got.chosen is not None and got.realism is not None and critic is not None
    for i, s in enumerate([3, 4, 5]):
        scores = critic.score_latents(gen.candidate_latents(s, 4))
        assert got.chosen[i] == int(np.argmax(scores))
        assert got.realism[i] == pytest.approx(scores.max(), rel=1e-5, abs=1e-5)
    raw = pipe.seeded_latents([3, 4, 5], 1.0, "raw")
    assert np.array_equal(raw.latents, gen.sample_latents([3, 4, 5]))


def test_cli_generate_refined_with_the_shipped_critic_keeps_the_axes_and_repeats(
        tmp_path: Path) -> None:
    from tlgan.assembly import load_pipeline
    from tlgan.critic import REFINE_RADIUS

    runner = CliRunner()
    for out in ("a", "b"):
        res = runner.invoke(cli, ["generate", "--seeds", "1-3", "--out", str(tmp_path / out),
                                  "--quality", "refined"])
        assert res.exit_code == 0, res.output
    p = load_pipeline(extractor="none")
    assert p.critic is not None
    want = p.seeded_latents([1, 2, 3], 1.0, "refined")
    assert want.realism is not None
    raw = p.seeds_to_latents([1, 2, 3])
    for i in range(3):
        name = f"seed000{i + 1}"
        meta = json.loads((tmp_path / "a" / f"{name}.json").read_text())
        assert meta["quality"] == "refined" and "candidate" not in meta
        z = np.asarray(meta["latent"], np.float32)
        assert np.array_equal(z, want.latents[i])
        assert meta["realism"] == round(float(want.realism[i]), 4)
        assert meta["realism"] > float(p.critic.score_latents(raw[i:i + 1])[0])
        move = z.astype(np.float64) - raw[i]
        assert 0 < np.linalg.norm(move) <= REFINE_RADIUS + 1e-4
        np.testing.assert_allclose(p.bundle_axes() @ move, 0.0, atol=1e-3)
        assert (tmp_path / "a" / f"{name}.png").read_bytes() == \
            (tmp_path / "b" / f"{name}.png").read_bytes()
    res = runner.invoke(cli, ["generate", "--seeds", "1", "--out", str(tmp_path / "x"),
                              "--quality", "refined", "--critic", "none"])
    assert res.exit_code == 2 and "quality:" in res.output
