"""The pipeline: render+label, edits with locks, and feature-conditioned generation."""

from __future__ import annotations

import numpy as np
import pytest

from tlgan.pipeline import Pipeline
from tlgan.testing import tiny_generator


def test_render_and_label(tiny_pipeline: Pipeline) -> None:
    z = tiny_pipeline.seeds_to_latents([1, 2, 3])
    images, probs = tiny_pipeline.render_and_label(z)
    assert images.shape == (3, 64, 64, 3) and probs is not None
    assert probs.shape == (3, len(tiny_pipeline.attributes))
    assert ((probs >= 0) & (probs <= 1)).all()
    assert np.array_equal(images, tiny_pipeline.render(z))
    _, none = tiny_pipeline.render_and_label(z, with_features=False)
    assert none is None


def test_moves_add_up_and_locks_remove_the_locked_component(tiny_pipeline: Pipeline) -> None:
    z = tiny_pipeline.seeds_to_latents([4])[0]
    axes = {n: tiny_pipeline._axes[i] for i, n in enumerate(tiny_pipeline.axis_names)}
    moved = tiny_pipeline.edit(z, {"Smiling": 2.0, "Eyeglasses": -1.0})
    expected = z + 2.0 * axes["Smiling"] - 1.0 * axes["Eyeglasses"]
    np.testing.assert_allclose(moved, expected, atol=1e-5)
    locked = tiny_pipeline.edit(z, {"Smiling": 2.0}, locked=["Male", "Young"])
    for ref in ("Male", "Young"):
        assert abs(float((locked - z) @ axes[ref])) < 1e-5
    assert float((locked - z) @ axes["Smiling"]) > 1.0  # the target still moves
    # locking an axis that is also moved cancels that move
    cancel = tiny_pipeline.edit(z, {"Male": 3.0}, locked=["Male"])
    np.testing.assert_allclose(cancel, z, atol=1e-5)


def test_unknown_axis_names_the_field(tiny_pipeline: Pipeline) -> None:
    z = tiny_pipeline.seeds_to_latents([1])[0]
    with pytest.raises(ValueError, match=r"moves: unknown axis 'Nose'.*valid axes: Eyeglasses"):
        tiny_pipeline.edit(z, {"Nose": 1.0})
    with pytest.raises(ValueError, match=r"locked: unknown axis 'Nose'"):
        tiny_pipeline.edit(z, {"Smiling": 1.0}, locked=["Nose"])
    with pytest.raises(ValueError, match=r"moves\.Smiling"):
        tiny_pipeline.edit(z, {"Smiling": float("nan")})


def test_condition_moves_towards_targets_and_reports_unmet(tiny_pipeline: Pipeline) -> None:
    z = tiny_pipeline.seeds_to_latents(range(6))
    before = tiny_pipeline.label_latents(z)
    col = tiny_pipeline.attributes.index("Smiling")
    res = tiny_pipeline.condition(z, {"Smiling": 0.95})
    assert res.latents.shape == z.shape and len(res.unmet) == 6
    after = res.probs[:, col]
    for i in range(6):
        if res.unmet[i]:
            assert res.unmet[i] == ["Smiling"] and abs(after[i] - 0.95) > 0.2
        else:
            assert abs(after[i] - 0.95) <= 0.2
    assert after.mean() > before[:, col].mean()
    with pytest.raises(ValueError, match=r"features: unknown attribute 'Nose'"):
        tiny_pipeline.condition(z, {"Nose": 1.0})
    with pytest.raises(ValueError, match=r"features.Smiling: target must be a probability"):
        tiny_pipeline.condition(z, {"Smiling": 2.0})


def test_conditioned_starts_pick_the_candidate_nearest_the_targets(
        tiny_pipeline: Pipeline) -> None:
    from tlgan.latents import candidate_latents

    seeds = [3, 4, 5, 6]
    targets = {"Smiling": 0.95}
    col = tiny_pipeline.attributes.index("Smiling")
    one = tiny_pipeline.conditioned_starts(seeds, targets, candidates=1)
    assert np.array_equal(one, tiny_pipeline.seeds_to_latents(seeds))
    best = tiny_pipeline.conditioned_starts(seeds, targets, candidates=8)
    assert np.array_equal(best, tiny_pipeline.conditioned_starts(seeds, targets, candidates=8))
    for i, s in enumerate(seeds):  # each start is one of its seed's candidates, the best one
        pool = candidate_latents(s, 8, tiny_pipeline.latent_size)
        k = [np.array_equal(best[i], c) for c in pool].index(True)
        p = np.clip(tiny_pipeline.label_latents(pool)[:, col].astype(np.float64), 0.02, 0.98)
        gap = np.abs(np.log(0.95 / 0.05) - np.log(p / (1 - p)))
        assert gap[k] == gap.min()
    assert (tiny_pipeline.label_latents(best)[:, col]
            >= tiny_pipeline.label_latents(one)[:, col] - 1e-6).all()
    with pytest.raises(ValueError, match="candidates"):
        tiny_pipeline.conditioned_starts(seeds, targets, candidates=0)
    with pytest.raises(ValueError, match=r"features\.Smiling"):
        tiny_pipeline.conditioned_starts(seeds, {"Smiling": 1.5})


def test_bundle_for_another_latent_size_refuses(tiny_pipeline: Pipeline) -> None:
    with pytest.raises(ValueError, match=r"latent size 16.*has 8"):
        Pipeline(generator=tiny_generator(latent_size=8), bundle=tiny_pipeline.bundle)


def test_closed_loop_locks_hold_each_face_not_only_the_average(
        tiny_pipeline: Pipeline) -> None:
    p = tiny_pipeline
    z = p.seeds_to_latents(range(40))
    locked = ["Male"]
    col = p.attributes.index("Male")
    moved = np.stack([p.edit(zi, {"Smiling": 3.0, "Eyeglasses": -2.0}, locked) for zi in z])
    before = p.label_latents(z)[:, col]
    open_loop = np.abs(p.label_latents(moved)[:, col] - before)
    res = p.hold_locks(z, moved, locked, tolerance=0.05, max_steps=4)
    closed = np.abs(res.probs[:, col] - before)
    assert res.latents.shape == z.shape and res.images.shape == (40, 64, 64, 3)
    assert open_loop.max() > 0.05  # the open-loop lock leaves some faces drifting ...
    assert closed.mean() < open_loop.mean() and closed.max() <= open_loop.max() + 1e-6
    for i in range(40):  # ... and every face reports honestly what it could not hold
        assert res.unheld[i] == ([] if closed[i] <= 0.05 else ["Male"])
    assert sum(not u for u in res.unheld) > sum(open_loop <= 0.05)
    # the correction only moves along the locked axis
    male = p._axes[p.axis_index("Male")].astype(np.float64)
    resid = (res.latents - moved).astype(np.float64)
    resid -= np.outer(resid @ male, male)
    assert np.abs(resid).max() < 1e-4
    # the images and probabilities returned are those of the latents returned
    again_images, again_probs = p.render_and_label(res.latents)
    assert np.array_equal(again_images, res.images)
    np.testing.assert_allclose(again_probs, res.probs, atol=1e-5)


def test_closed_loop_locks_need_an_extractor_and_an_attribute(tiny_pipeline: Pipeline) -> None:
    p = tiny_pipeline
    assert p.held_locks(["Male", "Male", "Young"]) == ["Male", "Young"]
    bare = Pipeline(generator=p.generator, extractor=None, bundle=p.bundle)
    assert bare.held_locks(["Male"]) == []
    z = p.seeds_to_latents([1, 2])
    res = p.hold_locks(z, z + 0.1, [], max_steps=4)
    assert res.steps == 0 and res.unheld == [[], []]
    np.testing.assert_array_equal(res.latents, (z + 0.1).astype(np.float32))
    with pytest.raises(ValueError, match="moved"):
        p.hold_locks(z, z[:1], ["Male"])


def test_summary_is_one_readable_line(tiny_pipeline: Pipeline) -> None:
    line = tiny_pipeline.summary()
    assert "\n" not in line and "{" not in line
    assert line.startswith("generator tiny-dcgan (000000000000, 64 px, z in R^16)")
    assert "extractor tiny-extractor (111111111111)" in line
    assert f"bundle {tiny_pipeline.bundle_id} (5 axes, references Male, Young)" in line
    bare = Pipeline(generator=tiny_pipeline.generator)
    assert "no extractor, no axes" in bare.summary()
