"""The edit use case: one plan (validated once, with its cost) that the API, the CLI and the
benches run."""

from __future__ import annotations

import numpy as np
import pytest

from tlgan.pipeline import Pipeline, hold_cost, plan_edit


def test_a_plain_move_is_a_batchable_render_of_the_moved_latents(
        tiny_pipeline: Pipeline) -> None:
    z = tiny_pipeline.seeds_to_latents([1, 2])
    plan = plan_edit(tiny_pipeline, z, {"Smiling": 2.0}, hold_references=False,
                     locality=False)
    assert plan.batchable and plan.cost == 2
    np.testing.assert_array_equal(plan.moved[1], tiny_pipeline.edit(z[1], {"Smiling": 2.0}))
    result = plan.run()
    images, probs = tiny_pipeline.render_and_label(plan.moved)
    assert np.array_equal(result.images, images) and result.probs is not None
    np.testing.assert_array_equal(result.probs, probs)
    assert result.unheld is None and not result.locality and not result.hold_references
    assert result.attributes == tiny_pipeline.attributes


def test_held_locks_cost_a_hold_and_give_what_hold_locks_gives(tiny_pipeline: Pipeline) -> None:
    z = tiny_pipeline.seeds_to_latents([3, 4, 5])
    plan = plan_edit(tiny_pipeline, z, {"Smiling": 3.0}, ["Male"], hold_references=False,
                     locality=False)
    assert plan.holds_locks and not plan.batchable and plan.cost == hold_cost(3)
    result = plan.run()
    held = tiny_pipeline.hold_locks(z, plan.moved, ["Male"])
    np.testing.assert_array_equal(result.latents, held.latents)
    assert result.unheld == held.unheld
    # a part of the plan is the same edit of those faces
    part = plan.part(slice(1, 3))
    np.testing.assert_array_equal(part.moved, plan.moved[1:3])
    assert part.cost == hold_cost(2)
    # without features the faces are the same and no labels come back
    bare = plan_edit(tiny_pipeline, z, {"Smiling": 3.0}, ["Male"], hold_references=False,
                     locality=False, with_features=False).run()
    assert bare.probs is None and np.array_equal(bare.images, result.images)


def test_no_moves_holds_nothing(tiny_pipeline: Pipeline) -> None:
    z = tiny_pipeline.seeds_to_latents([6])
    plan = plan_edit(tiny_pipeline, z, {}, ["Male"])
    assert plan.batchable and not plan.holds_locks and not plan.hold_references
    np.testing.assert_array_equal(plan.moved, z)


def test_bad_input_is_refused_once_naming_the_field(tiny_pipeline: Pipeline) -> None:
    z = tiny_pipeline.seeds_to_latents([1])
    with pytest.raises(ValueError, match=r"^locked: unknown axis 'Nose'"):
        plan_edit(tiny_pipeline, z, {"Nose": 1.0}, ["Nose"])  # the locks are checked first
    with pytest.raises(ValueError, match=r"^lock: unknown axis 'Nose'"):
        plan_edit(tiny_pipeline, z, {"Smiling": 1.0}, ["Nose"], locked_field="lock")
    with pytest.raises(ValueError, match=r"^moves\.Smiling: distance must be a finite"):
        plan_edit(tiny_pipeline, z, {"Smiling": float("inf")})
    with pytest.raises(ValueError, match=r"^latent: "):
        plan_edit(tiny_pipeline, [[0.0, 1.0]], {"Smiling": 1.0})
    with pytest.raises(ValueError, match=r"^latent: expected"):
        plan_edit(tiny_pipeline, z[:, :-1], {"Smiling": 1.0})
    bare = Pipeline(tiny_pipeline.generator)
    with pytest.raises(ValueError, match=r"^locked: this service has no axis bundle loaded"):
        plan_edit(bare, bare.seeds_to_latents([1]), {}, ["Male"])


def test_the_check_sees_the_moved_and_the_held_latents(tiny_pipeline: Pipeline) -> None:
    seen: list[str] = []

    def check(latents: np.ndarray, what: str) -> None:
        assert latents.shape == (1, tiny_pipeline.latent_size)
        seen.append(what)

    z = tiny_pipeline.seeds_to_latents([2])
    plan = plan_edit(tiny_pipeline, [z[0].tolist()], {"Smiling": 2.0}, ["Male"],
                     hold_references=False, locality=False, check=check)
    plan.run()
    assert seen == ["the moved latent", "the moved latent, with its locks held,"]
