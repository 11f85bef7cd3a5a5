"""Best-of-K sampling (tlgan.pipeline.ranking): raw is today's latents, ranked is the
critic's argmax among the seed's candidates, deterministic; conditioned starts ranked."""

from __future__ import annotations

import numpy as np
import pytest

from tlgan.critic import DEFAULT_QUALITY
from tlgan.pipeline import Pipeline
from tlgan.pipeline.ranking import (
    MAX_CANDIDATES,
    best_ranked,
    resolve_quality,
)


def test_raw_is_each_seeds_own_latent_with_or_without_a_critic(
        tiny_pipeline: Pipeline, ranked_pipeline: Pipeline) -> None:
    seeds = [1, 2, 3]
    for pipe in (tiny_pipeline, ranked_pipeline):
        raw = pipe.seeded_latents(seeds, 0.8, "raw")
        assert raw.quality == "raw" and raw.chosen is None and raw.realism is None
        assert np.array_equal(raw.latents, pipe.seeds_to_latents(seeds, 0.8))
    # no critic: the default is raw
    assert tiny_pipeline.seeded_latents(seeds).quality == "raw"


def test_ranked_picks_the_critics_argmax_among_the_seeds_candidates(
        ranked_pipeline: Pipeline) -> None:
    assert ranked_pipeline.critic is not None
    seeds = [5, 6, 7, 8, 9, 10]
    got = ranked_pipeline.seeded_latents(seeds, 1.0, "ranked", 6)
    assert got.quality == "ranked" and got.candidates == 6
    assert got.chosen is not None and got.realism is not None
    for i, s in enumerate(seeds):
        pool = ranked_pipeline.generator.candidate_latents(s, 6)
        scores = ranked_pipeline.critic.score(ranked_pipeline.render(pool))
        k = int(np.argmax(scores))
        assert got.chosen[i] == k
        assert np.array_equal(got.latents[i], pool[k])
        assert got.realism[i] == pytest.approx(scores[k], abs=1e-9)
        assert got.realism[i] >= scores[0]  # never worse than the raw face
    assert set(got.chosen.tolist()) != {0}  # the ranking changes some faces
    again = ranked_pipeline.seeded_latents(seeds, 1.0, "ranked", 6)
    assert np.array_equal(again.latents, got.latents)
    assert np.array_equal(again.chosen, got.chosen)  # type: ignore[arg-type]
    empty = ranked_pipeline.seeded_latents([], 1.0, "ranked", 4)
    assert empty.latents.shape == (0, ranked_pipeline.latent_size)


def test_ranked_needs_a_critic_and_bounded_candidates(tiny_pipeline: Pipeline,
                                                      ranked_pipeline: Pipeline) -> None:
    with pytest.raises(ValueError, match=r"^quality: 'ranked' needs a realism critic"):
        tiny_pipeline.seeded_latents([1], 1.0, "ranked")
    with pytest.raises(ValueError, match=r"^quality: must be one of raw, ranked"):
        ranked_pipeline.seeded_latents([1], 1.0, "best")
    for bad in (1, MAX_CANDIDATES + 1, 2.5, True):
        with pytest.raises(ValueError, match=r"^candidates:"):
            ranked_pipeline.seeded_latents([1], 1.0, "ranked", bad)  # type: ignore[arg-type]
    assert resolve_quality(None, None) == "raw"
    assert resolve_quality(None, ranked_pipeline.critic) == DEFAULT_QUALITY == "raw"
    assert ranked_pipeline.seeded_latents([1]).quality == "raw"


def test_best_ranked_keeps_the_top_scores_ties_to_the_lower_k() -> None:
    scores = np.array([[0.0, 3.0, 1.0, 3.0], [2.0, 2.0, 2.0, 2.0]])
    assert best_ranked(scores, 2).tolist() == [[False, True, False, True],
                                               [True, True, False, False]]
    assert np.argmax(scores, axis=1).tolist() == [1, 0]  # the ranked pick: the lowest k


def test_ranked_conditioned_starts_are_nearest_among_the_better_half(
        ranked_pipeline: Pipeline, tiny_pipeline: Pipeline) -> None:
    assert ranked_pipeline.critic is not None
    seeds = [3, 4, 5, 6]
    targets = {"Smiling": 0.95}
    col = ranked_pipeline.attributes.index("Smiling")
    raw = ranked_pipeline.conditioned_starts(seeds, targets, candidates=8)
    assert np.array_equal(raw, tiny_pipeline.conditioned_starts(seeds, targets, candidates=8))
    starts, chosen = ranked_pipeline.ranked_starts(seeds, targets, candidates=8,
                                                   quality="ranked")
    assert chosen is not None
    for i, s in enumerate(seeds):
        pool = ranked_pipeline.generator.candidate_latents(s, 8)
        assert np.array_equal(starts[i], pool[chosen[i]])
        scores = ranked_pipeline.critic.score(ranked_pipeline.render(pool))
        better = np.argsort(-scores, kind="stable")[:4]
        assert chosen[i] in better
        p = np.clip(ranked_pipeline.label_latents(pool)[:, col].astype(np.float64), 0.02, 0.98)
        gap = np.abs(np.log(0.95 / 0.05) - np.log(p / (1 - p)))
        assert gap[chosen[i]] == pytest.approx(gap[better].min(), abs=1e-6)
    again = ranked_pipeline.ranked_starts(seeds, targets, candidates=8, quality="ranked")
    assert np.array_equal(again[0], starts)
    result = ranked_pipeline.generate_conditioned(seeds[:2], targets, quality="ranked")
    assert result.chosen is not None and result.realism is not None
    assert np.allclose(result.realism, ranked_pipeline.critic.score(result.images))


def test_refined_climbs_the_critic_orthogonal_to_the_axes_within_the_radius(
        ranked_pipeline: Pipeline) -> None:
    from tlgan.critic import REFINE_RADIUS

    p = ranked_pipeline
    assert p.critic is not None
    seeds = list(range(1, 13))
    raw = p.seeds_to_latents(seeds)
    got = p.seeded_latents(seeds, 1.0, "refined")
    assert got.quality == "refined" and got.chosen is None and got.realism is not None
    move = got.latents.astype(np.float64) - raw
    # the move is bounded, keeps every bundle axis and never lowers the critic's score
    assert (np.linalg.norm(move, axis=1) <= REFINE_RADIUS + 1e-4).all()
    axes = p.bundle_axes()
    assert len(axes) == len(p.attributes)
    np.testing.assert_allclose(move @ axes.T, 0.0, atol=1e-4)
    before = p.critic.score_latents(raw)
    np.testing.assert_allclose(got.realism, p.critic.score_latents(got.latents), atol=1e-9)
    assert (got.realism >= before - 0.05).all() and (got.realism > before + 0.05).sum() >= 6
    # deterministic, byte for byte
    again = p.seeded_latents(seeds, 1.0, "refined")
    assert again.latents.tobytes() == got.latents.tobytes()
    assert p.seeded_latents([], 1.0, "refined").latents.shape == (0, p.latent_size)


def test_refined_needs_a_critic_and_the_axes(tiny_pipeline: Pipeline,
                                             ranked_pipeline: Pipeline) -> None:
    import dataclasses

    from tlgan.pipeline.ranking import refine_latents

    with pytest.raises(ValueError, match=r"^quality: 'refined' needs a realism critic"):
        tiny_pipeline.seeded_latents([1], 1.0, "refined")
    p = ranked_pipeline
    assert p.critic is not None
    z = p.seeds_to_latents([1])
    with pytest.raises(ValueError, match=r"^quality: 'refined' needs the axis bundle"):
        refine_latents(p.critic, p.models, z, np.zeros((0, p.latent_size)))
    with pytest.raises(ValueError, match=r"^quality: 'refined' needs the axis bundle"):
        dataclasses.replace(p, bundle=None).seeded_latents([1], 1.0, "refined")
    for kw in ({"steps": 0}, {"radius": 0.0}, {"radius": float("nan")}):
        with pytest.raises(ValueError, match=rf"^{next(iter(kw))}:"):
            refine_latents(p.critic, p.models, z, p.bundle_axes(), **kw)  # type: ignore[arg-type]
