"""Realism held during edits: the critic's score of an edited face brought back near the
start face's by corrections orthogonal to the moves and the locks (tlgan.pipeline.realism,
the edit use case)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tlgan.pipeline import Pipeline, plan_edit
from tlgan.pipeline.locality import render_local, render_local_tensor
from tlgan.pipeline.realism import REALISM_TOLERANCE, hold_realism, realism_cost
from tlgan.testing import tiny_critic
from tlgan_base.domain_errors import Stopped


@pytest.fixture(scope="module")
def critic_pipeline(tiny_pipeline: Pipeline) -> Pipeline:
    """The tiny pipeline with a tiny seeded critic (a copy: the shared one has none)."""
    return dataclasses.replace(tiny_pipeline,
                               critic=tiny_critic(tiny_pipeline.generator, gain=30.0))


def _bowl(centre: np.ndarray):  # type: ignore[no-untyped-def]
    """A score that peaks at ``centre``: -|z - centre|^2, and its gradient."""

    def score(z: np.ndarray, rows: np.ndarray, grad: bool
              ) -> tuple[np.ndarray, np.ndarray | None]:
        d = z.astype(np.float64) - centre
        return -(d ** 2).sum(axis=1), -2 * d if grad else None

    return score


def test_faces_that_fell_are_climbed_back_orthogonal_to_the_fixed_directions() -> None:
    start = np.zeros((3, 6), np.float32)
    fixed = np.eye(6)[:2]  # the first two coordinates must not move
    # face 0 barely moved (score -0.04: within tolerance); faces 1, 2 fell far
    moved = np.array([[0.2, 0, 0, 0, 0, 0], [1, 0, 2, 0, 0, 0], [0, 1, 0, 0, 3, 1]],
                     np.float32)
    out = hold_realism(_bowl(np.zeros(6)), start, moved, fixed, tolerance=0.5, max_steps=8,
                       step=0.75, max_total=5.0)
    np.testing.assert_array_equal(out.latents[0], moved[0])
    assert out.changed.tolist() == [False, True, True]
    # the fixed coordinates stay where the move put them; the score can only rise
    np.testing.assert_allclose(out.latents[:, :2], moved[:, :2], atol=1e-6)
    assert (out.end >= out.moved - 1e-9).all() and out.end[2] > out.moved[2] + 5
    np.testing.assert_allclose(out.start, 0.0)
    # faces 1 and 2 can get no higher than -1 (their fixed part): not held within 0.5
    assert out.held.tolist() == [True, False, False]
    assert out.end[1] == pytest.approx(-1.0, abs=0.05)
    # deterministic, and the same outcome when asked again
    again = hold_realism(_bowl(np.zeros(6)), start, moved, fixed, tolerance=0.5, max_steps=8,
                         step=0.75, max_total=5.0)
    np.testing.assert_array_equal(again.latents, out.latents)
    # a bound on the total correction holds
    short = hold_realism(_bowl(np.zeros(6)), start, moved, fixed, tolerance=0.5,
                         max_steps=8, step=0.75, max_total=0.5)
    assert (np.linalg.norm(short.latents - moved, axis=1) <= 0.5 + 1e-6).all()


def test_no_steps_or_a_stop_request() -> None:
    start = np.zeros((1, 3), np.float32)
    moved = np.ones((1, 3), np.float32)
    out = hold_realism(_bowl(np.zeros(3)), start, moved, np.zeros((0, 3)), max_steps=0)
    assert out.steps == 0 and not out.changed.any() and not out.held[0]
    with pytest.raises(Stopped):
        hold_realism(_bowl(np.zeros(3)), start, moved, np.zeros((0, 3)),
                     should_stop=lambda: True)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"tolerance": -1.0}, "tolerance"), ({"step": float("nan")}, "step"),
    ({"max_total": -0.1}, "max_total"), ({"max_steps": -1}, "max_steps"),
])
def test_bad_arguments_are_named(kwargs: dict[str, float], field: str) -> None:
    z = np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match=rf"^{field}:"):
        hold_realism(_bowl(np.zeros(3)), z, z, np.zeros((0, 3)), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^moved:"):
        hold_realism(_bowl(np.zeros(3)), z, np.zeros((2, 3)), np.zeros((0, 3)))


def test_differentiable_renders_match_the_inference_renders(tiny_pipeline: Pipeline) -> None:
    g = tiny_pipeline.generator
    z = tiny_pipeline.seeds_to_latents([1, 2])
    zt = torch.as_tensor(z).requires_grad_(True)
    x = g.render_grad(zt)
    assert x.requires_grad
    torch.testing.assert_close(x.detach(), g.render_tensor(z), atol=1e-5, rtol=0)
    mask = np.zeros((2, 64, 64), np.float32)
    mask[:, 20:40, 10:50] = 1
    moved = z + 1.0
    local = render_local_tensor(g, torch.as_tensor(z), torch.as_tensor(moved).requires_grad_(),
                                torch.as_tensor(mask))
    torch.testing.assert_close(local.detach(), render_local(g, z, moved, mask), atol=1e-5,
                               rtol=0)


def test_an_edit_checks_realism_with_a_critic_and_holds_it_when_asked(
        critic_pipeline: Pipeline, tiny_pipeline: Pipeline) -> None:
    p = critic_pipeline
    z = p.seeds_to_latents(range(1, 25))
    moves = {"Eyeglasses": 3.0}
    plan = plan_edit(p, z, moves, ["Male"], locality=False, hold_references=False,
                     realism=True)
    assert plan.realism and plan.checks_realism and not plan.batchable
    base = plan_edit(p, z, moves, ["Male"], locality=False, hold_references=False)
    assert not base.realism and base.checks_realism  # the default: checked, not held
    bare = plan_edit(tiny_pipeline, z, moves, ["Male"], locality=False, hold_references=False)
    assert base.cost == bare.cost + realism_cost(len(z), 0)
    assert plan.cost == bare.cost + realism_cost(len(z))
    held, free = plan.run(), base.run()
    assert free.realism is not None and held.realism is not None
    checked = free.realism
    assert checked.steps == 0 and not checked.changed.any() and not checked.face(0)["hold"]
    np.testing.assert_array_equal(free.latents, bare.run().latents)
    real = held.realism
    assert real.face(0)["hold"]
    np.testing.assert_allclose(checked.end, real.moved, atol=1e-6)
    critic = p.critic
    assert critic is not None
    # the scores reported are the critic's scores of the start latents and the latents
    # returned (the discriminator critic scores their faces, up to the uint8 rounding)
    np.testing.assert_allclose(real.start, critic.score(p.render(z)), atol=0.05)
    np.testing.assert_allclose(real.end, critic.score(held.images), atol=0.05)
    np.testing.assert_allclose(real.moved, critic.score(free.images), atol=0.05)
    fell = real.start - real.moved > REALISM_TOLERANCE
    assert fell.sum() >= 3, "the fixture should make some faces fall"
    assert real.changed.sum() >= 3 and (~real.changed | fell).all()
    assert (real.held | fell).all() and real.held.sum() > (~fell).sum()
    # the move and the lock stay: no change along the moved or locked axes
    axes = p.table.axes[[p.table.index["Eyeglasses"], p.table.index["Male"]]]
    np.testing.assert_allclose((held.latents - free.latents) @ axes.T, 0.0, atol=1e-4)
    # unchanged faces are the same faces; changed ones are renders of the latents returned
    same = ~real.changed
    np.testing.assert_array_equal(held.images[same], free.images[same])
    images, probs = p.render_and_label(held.latents)
    np.testing.assert_array_equal(held.images, images)
    assert held.probs is not None and probs is not None
    np.testing.assert_allclose(held.probs, probs, atol=1e-6)
    # the locks are judged again on the faces returned, and the hold never lets one go
    assert held.unheld is not None and free.unheld is not None and len(held.unheld) == len(z)
    assert all(set(h) <= set(f) for h, f in zip(held.unheld, free.unheld, strict=True))
    male = p.attributes.index("Male")
    p0 = p.label_latents(z)[:, male]
    assert held.probs is not None
    for i, lost in enumerate(np.abs(held.probs[:, male] - p0) > 0.05):
        assert lost == ("Male" in held.unheld[i])
    # deterministic
    np.testing.assert_array_equal(plan.run().latents, held.latents)
    assert held.realism.face(0)["held"] in (True, False)


def test_a_local_edit_is_judged_on_its_moved_latent(
        tiny_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> None:
    from axes.bundle_attach import attach_masks
    from tlgan.pipeline.locality import learn_masks
    from tlgan.testing import tiny_bundle_with_samples

    folder = tmp_path_factory.mktemp("bundle") / "b"
    p = tiny_bundle_with_samples(tiny_pipeline, folder, n=200)
    masks, meta = learn_masks(p, faces=32, global_area=1.0)  # random faces: wide masks
    p = Pipeline(generator=p.generator, extractor=p.extractor,
                 bundle=attach_masks(folder, masks, meta),
                 critic=tiny_critic(p.generator, gain=30.0))
    z = p.seeds_to_latents(range(1, 17))
    moves = {"Eyeglasses": 3.0}
    result = plan_edit(p, z, moves, locality=True, hold_references=False, realism=True).run()
    real = result.realism
    assert result.locality and real is not None and real.changed.any()
    assert p.critic is not None
    # the critic scores latents: a local edit's is its moved latent, not the blended face
    np.testing.assert_allclose(real.end, p.critic.score_latents(result.latents), atol=0.05)
    assert not np.allclose(real.end, p.critic.score(result.images), atol=0.05)
    images, _ = p.render_edit(z, result.latents, moves, True)
    np.testing.assert_array_equal(result.images, images)


def test_realism_off_without_a_critic_and_refused_when_asked(tiny_pipeline: Pipeline) -> None:
    z = tiny_pipeline.seeds_to_latents([1])
    plan = plan_edit(tiny_pipeline, z, {"Smiling": 3.0})
    assert not plan.realism and not plan.checks_realism and plan.run().realism is None
    with pytest.raises(ValueError, match=r"^realism: this service has no realism critic"):
        plan_edit(tiny_pipeline, z, {"Smiling": 3.0}, realism=True)
    with pytest.raises(ValueError, match=r"^realism:"):
        plan_edit(tiny_pipeline, z, {}, realism=True)


def test_no_move_holds_no_realism(critic_pipeline: Pipeline) -> None:
    z = critic_pipeline.seeds_to_latents([1])
    plan = plan_edit(critic_pipeline, z, {"Smiling": 0.0}, realism=True)
    assert not plan.realism and not plan.checks_realism and plan.run().realism is None


def test_known_scores_skip_the_first_pass() -> None:
    start = np.zeros((2, 3), np.float32)
    moved = np.array([[2, 0, 0], [0.1, 0, 0]], np.float32)
    calls: list[int] = []
    bowl = _bowl(np.zeros(3))

    def counted(z: np.ndarray, rows: np.ndarray, grad: bool
                ) -> tuple[np.ndarray, np.ndarray | None]:
        calls.append(len(z))
        return bowl(z, rows, grad)

    out = hold_realism(counted, start, moved, np.zeros((0, 3)), max_steps=0,
                       scores=(np.zeros(2), np.array([-4.0, -0.01])))
    assert calls == [] and out.held.tolist() == [False, True]
    with pytest.raises(ValueError, match=r"^scores:"):
        hold_realism(counted, start, moved, np.zeros((0, 3)), scores=(np.zeros(2), np.zeros(3)))


def test_photo_edits_and_asked_edits_skip_the_check(critic_pipeline: Pipeline) -> None:
    from tlgan.photos.usecase import PhotoEditRequest

    z = critic_pipeline.seeds_to_latents([1])
    plan = plan_edit(critic_pipeline, z, {"Smiling": 2.0}, check_realism=False)
    assert not plan.checks_realism and plan.run().realism is None
    photo = PhotoEditRequest(moves={"Smiling": 2.0}).plan(critic_pipeline, z[0])
    assert not photo.checks_realism and not photo.realism


def test_the_client_sends_and_reads_realism() -> None:
    from tlgan.client_wire import edit_body, face_of

    body = edit_body(np.zeros(3), {"Smiling": 1.0}, [], "png", None, True, realism=True)
    assert body["realism"] is True
    assert "realism" not in edit_body(np.zeros(3), {}, [], "png", None, True)
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, "PNG")
    real = {"start": 1.0, "moved": 0.0, "end": 0.5, "held": True, "hold": True,
            "tolerance": 0.5}
    face = face_of({"image": base64.b64encode(buf.getvalue()).decode(), "latent": [0.0],
                    "realism": real})
    assert face.realism == real
    assert face.score is None and face.candidate is None


def test_the_client_asks_for_a_quality_and_reads_a_generated_faces_score() -> None:
    import base64
    import io

    from PIL import Image

    from tlgan.client_wire import face_of, generate_body

    body = generate_body(1, 2, 1.0, None, "png", None, True, "refined")
    assert body["quality"] == "refined"
    assert "quality" not in generate_body(1, 2, 1.0, None, "png", None, True)
    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, "PNG")
    image = base64.b64encode(buf.getvalue()).decode()
    face = face_of({"image": image, "latent": [0.0], "realism": 2.5, "candidate": None})
    assert face.score == 2.5 and face.realism is None and face.candidate is None
    ranked = face_of({"image": image, "latent": [0.0], "realism": -1.25, "candidate": 3})
    assert ranked.score == -1.25 and ranked.candidate == 3
