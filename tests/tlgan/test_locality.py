"""Local edits (#28): masks shipped with the bundle, locality off renders as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from axes.bundle import load
from tlgan.pipeline import Pipeline
from tlgan.pipeline.locality import KEEP_BELOW, KEEP_FULL, keep_ramp, render_local
from tlgan_base.artifact import ArtifactError


def test_masks_ship_checksummed_with_provenance_and_references_stay_global(
        local: tuple[Pipeline, Path]) -> None:
    p, folder = local
    config = json.loads((folder / "config.json").read_text())
    meta = config["masks"]
    assert "masks.npz" in config["files"] and meta["generator_sha256"] == p.generator.sha256
    assert "global" in meta["axes"]["Male"] and "global" in meta["axes"]["Young"]
    assert p.has_locality and "Male" not in p.local_axes and p.local_axes
    masks = p.bundle.load_masks() if p.bundle else {}
    assert all(m.shape == (64, 64) and m.min() >= 0 and m.max() <= 1 for m in masks.values())
    # the bundle's content id is unchanged and a tampered mask file is refused
    assert load(folder).id == config["id"]
    raw = bytearray((folder / "masks.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = folder.parent / "bad"
    bad.mkdir()
    for f in folder.iterdir():
        (bad / f.name).write_bytes(bytes(raw) if f.name == "masks.npz" else f.read_bytes())
    with pytest.raises(ArtifactError, match=r"masks\.npz"):
        load(bad)


def test_locality_off_renders_exactly_as_before(local: tuple[Pipeline, Path]) -> None:
    p, _ = local
    axis = p.local_axes[0]
    z = p.seeds_to_latents(range(5))
    moved = np.stack([p.edit(zi, {axis: 2.0}) for zi in z])
    images, probs = p.render_edit(z, moved, {axis: 2.0}, False)
    want_images, want_probs = p.render_and_label(moved)
    assert np.array_equal(images, want_images) and np.array_equal(probs, want_probs)
    # a global axis renders globally even with locality on
    g_moved = np.stack([p.edit(zi, {"Male": 2.0}) for zi in z])
    assert np.array_equal(p.render_edit(z, g_moved, {"Male": 2.0}, True)[0],
                          p.render_and_label(g_moved)[0])


def test_local_edit_leaves_the_outside_of_its_mask(local: tuple[Pipeline, Path]) -> None:
    p, _ = local
    axis = min(p.local_axes, key=lambda a: float(p.locality_mask({a: 1.0}).mean()))
    mask = p.locality_mask({axis: 3.0})
    assert mask is not None
    z = p.seeds_to_latents(range(8))
    moved = np.stack([p.edit(zi, {axis: 3.0}) for zi in z])
    base = p.render(z).astype(float)
    glob = np.abs(p.render_edit(z, moved, {axis: 3.0}, False)[0] - base).mean(-1)
    loc = np.abs(p.render_edit(z, moved, {axis: 3.0}, True)[0] - base).mean(-1)
    outside = mask <= np.quantile(mask, 0.1)
    assert mask[outside].max() < 0.5
    assert loc[:, outside].mean() < 0.6 * glob[:, outside].mean()
    assert loc[:, mask == 1].mean() > 0.6 * glob[:, mask == 1].mean()


def test_local_edit_gives_back_the_start_pixels_where_its_mask_is_low(
        local: tuple[Pipeline, Path]) -> None:
    p, _ = local
    assert p.bundle is not None
    z = p.seeds_to_latents(range(4))
    moved = z + 1.5 * np.asarray(p.bundle.directions[0], np.float32)
    r = p.resolution
    # a mask that is 0 on the left half, ramps through the middle and is 1 on the right
    mask = np.tile(np.linspace(-0.5, 1.5, r, dtype=np.float32).clip(0, 1), (r, 1))
    x = render_local(p.generator, z, moved, np.broadcast_to(mask, (4, r, r))).cpu().numpy()
    start = p.generator.render_tensor(z).cpu().numpy()
    whole = render_local(p.generator, z, moved, np.ones((4, r, r), np.float32)).cpu().numpy()
    low, high = mask <= KEEP_BELOW, mask >= 1.0
    assert low.any() and high.any()
    # exactly the start's pixels where the mask is low; the blend alone would change them
    assert np.array_equal(x[..., low], start[..., low])
    assert np.abs(whole[..., low] - start[..., low]).mean() > 1e-3
    # where the mask is 1 the edit is kept whole (the blend's own result there)
    assert np.abs(x[..., high] - start[..., high]).mean() > 1e-3


def test_keep_ramp_is_a_clamped_line_and_checks_its_bounds() -> None:
    import torch

    m = torch.tensor([0.0, KEEP_BELOW, (KEEP_BELOW + KEEP_FULL) / 2, KEEP_FULL, 1.0])
    assert keep_ramp(m).tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    with pytest.raises(ValueError, match="below, full"):
        keep_ramp(m, 0.5, 0.4)


def test_locality_requested_without_masks_names_the_field(tiny_pipeline: Pipeline) -> None:
    assert not tiny_pipeline.has_locality
    assert tiny_pipeline.resolve_locality(None) is False
    assert tiny_pipeline.resolve_locality(False) is False
    with pytest.raises(ValueError, match=r"^locality: .*ships no local-edit masks"):
        tiny_pipeline.resolve_locality(True)


def test_hold_edit_holds_the_references_orthogonally_to_the_move(
        tiny_pipeline: Pipeline) -> None:
    # a request's own axis (no head: no probability to keep) moves; the references
    # (Male, Young) are held per face, corrected only orthogonally to the moved axis
    d = np.random.default_rng(5).standard_normal(tiny_pipeline.latent_size)
    p = tiny_pipeline.with_custom(tiny_pipeline.custom_axes({"mine": d.tolist()}))
    unit = d / np.linalg.norm(d)
    z = p.seeds_to_latents(range(12))
    moves = {"mine": 3.0}
    moved = np.stack([p.edit(zi, moves) for zi in z])
    assert p.held_references(moves) == ["Male", "Young"]
    res = p.hold_edit(z, moved, moves)
    cols = [p.attributes.index(r) for r in ("Male", "Young")]
    p0 = p.label_latents(z)[:, cols]
    p_open = p.label_latents(moved)[:, cols]
    corr = res.latents.astype(np.float64) - moved
    assert np.abs(corr @ unit).max() < 1e-4  # the move along "mine" is untouched
    assert np.abs(corr).max() > 1e-3  # some face was corrected
    err = np.abs(res.probs[:, cols] - p0)
    assert err.max(axis=1).mean() < np.abs(p_open - p0).max(axis=1).mean()
    for row, unheld in zip(err, res.unheld, strict=True):  # held, or reported
        assert unheld == [r for r, e in zip(("Male", "Young"), row, strict=True) if e > 0.05]


def test_hold_edit_keeps_the_target_and_skips_moved_references(
        tiny_pipeline: Pipeline) -> None:
    p = tiny_pipeline
    z = p.seeds_to_latents(range(12))
    moves = {"Smiling": 2.5}
    moved = np.stack([p.edit(zi, moves) for zi in z])
    res = p.hold_edit(z, moved, moves)
    t = p.attributes.index("Smiling")
    p0, p_open = p.label_latents(z)[:, t], p.label_latents(moved)[:, t]
    # the hold does not take the move back: the target keeps most of what the open-loop
    # move gave it (the shipped models' figures: docs/axes.md; the tiny models' axis need
    # not raise its own label: take the sign it has)
    sign = np.sign(np.mean(p_open - p0))
    assert sign * np.mean(res.probs[:, t] - p0) > 0.5 * sign * np.mean(p_open - p0) > 0.05
    assert p.held_references({"Male": 2.0}) == ["Young"]
    assert p.held_references({"Smiling": 1.0}, ["Young"]) == ["Male"]
    assert p.resolve_hold_references(None) is True and p.resolve_hold_references(False) is False
    bare = Pipeline(generator=p.generator, extractor=None, bundle=p.bundle)
    assert bare.resolve_hold_references(None) is False
    with pytest.raises(ValueError, match=r"^hold_references: "):
        bare.resolve_hold_references(True)


def test_hold_edit_judges_a_local_edit_on_the_local_face(local: tuple[Pipeline, Path]
                                                         ) -> None:
    p, _ = local
    axis = p.local_axes[0]
    z = p.seeds_to_latents(range(6))
    moves = {axis: 3.0}
    moved = np.stack([p.edit(zi, moves) for zi in z])
    res = p.hold_edit(z, moved, moves, locality=True, max_steps=0)
    images, probs = p.render_edit(z, moved, moves, True)
    assert np.array_equal(res.images, images) and np.allclose(res.probs, probs, atol=1e-5)


@pytest.mark.real_weights
@pytest.mark.slow
def test_shipped_models_hold_references_without_undoing_the_target() -> None:
    from tlgan.assembly import load_pipeline

    p = load_pipeline(encoder="none")
    z = p.seeds_to_latents(range(7000, 7016))
    moves = {"Eyeglasses": 3.0}
    moved = np.stack([p.edit(zi, moves) for zi in z])
    cols = [p.attributes.index(r) for r in ("Male", "Young")]
    t = p.attributes.index("Eyeglasses")
    p0 = p.label_latents(z)
    _, p_open = p.render_edit(z, moved, moves, True)
    res = p.hold_edit(z, moved, moves, locality=True)
    assert p_open is not None
    swing_open = (np.abs(p_open[:, cols] - p0[:, cols]) > 0.3).any(axis=1).mean()
    swing_held = (np.abs(res.probs[:, cols] - p0[:, cols]) > 0.3).any(axis=1).mean()
    # 0.125 of these 16 faces before the pixel composite of local edits (which keeps the
    # start's pixels outside the glasses' region, so the hold has less to correct with),
    # 0.1875 with it (0.075 -> 0.100 on 40 other faces)
    assert swing_held < swing_open and swing_held <= 0.2
    gain_open, gain_held = np.mean(p_open[:, t] - p0[:, t]), np.mean(res.probs[:, t] - p0[:, t])
    assert gain_held > 0.9 * gain_open > 0.2  # the glasses stay on


def test_axes_report_shows_the_frame_face_ratio_with_locality(
        local: tuple[Pipeline, Path], tmp_path: Path) -> None:
    from tlgan.axis_work.axis_report import axis_report

    p, _ = local
    assert p.bundle is not None
    axis = min(p.local_axes, key=lambda a: float(p.locality_mask({a: 1.0}).mean()))
    summary = axis_report(p, p.bundle, tmp_path / "r", faces=2, curve_faces=8, face_faces=4,
                          axes=[axis], progress=False)
    row = summary["axes"][0]
    assert row["frame_face_on"] < row["frame_face_off"]
    assert (tmp_path / "r" / "faces" / f"{axis}.png").is_file()


# -- bench/locality.py: the judge's noise floor and the hold variants (#28) --------------

def test_judge_floor_changes_move_pixels_only_as_described() -> None:
    from bench.locality import jpeg_roundtrip, orthogonal_directions, shifted

    rng = np.random.default_rng(3)
    faces = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    right = shifted(faces, 1, 0)
    assert np.array_equal(right[:, :, 1:], faces[:, :, :-1])
    assert np.array_equal(right[:, :, 0], faces[:, :, 0])  # the edge repeated
    down = shifted(faces, 0, 2)
    assert np.array_equal(down[:, 2:], faces[:, :-2]) and np.array_equal(down[:, 1], faces[:, 0])
    assert np.array_equal(shifted(faces, 0, 0), faces)
    with pytest.raises(ValueError, match=r"^dx, dy: "):
        shifted(faces, 3, 0)
    smooth = np.repeat(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], 32, 0)
    smooth = np.repeat(smooth[None, :, :, :], 2, 0).repeat(3, -1)
    out = jpeg_roundtrip(smooth, 90)
    assert out.shape == smooth.shape and out.dtype == np.uint8
    assert 0 < np.abs(out.astype(int) - smooth).max() < 12  # re-encoded, barely changed
    axes = rng.standard_normal((5, 12))
    d = orthogonal_directions(axes, 3, seed=1)
    assert d.shape == (3, 12) and np.allclose(np.linalg.norm(d, axis=1), 1.0)
    assert np.abs(d @ axes.T).max() < 1e-9 and np.abs(d[0] @ d[1]) < 0.99
    assert np.array_equal(d, orthogonal_directions(axes, 3, seed=1))
    with pytest.raises(ValueError, match=r"^axes: "):
        orthogonal_directions(rng.standard_normal((12, 12)), 1, seed=0)


def test_judge_swings_count_each_threshold_and_skip_the_moved_reference() -> None:
    from bench.locality import judge_swings

    j0 = {"p_male": np.array([0.1, 0.1, 0.9, 0.5]), "age": np.array([30.0, 30, 30, 30])}
    j = {"p_male": np.array([0.5, 0.3, 0.9, 0.5]), "age": np.array([30.0, 45, 39, 19])}
    male, old = judge_swings(j0, j)
    assert male.tolist() == [True, False, False, False]
    assert old.tolist() == [False, True, False, True]
    male, old = judge_swings(j0, j, gender=False)
    assert not male.any() and old.tolist() == [False, True, False, True]
    assert not judge_swings(j0, j, age=False)[1].any()


def _local_move(p: Pipeline, faces: int, step: float
                ) -> tuple[str, np.ndarray, dict[str, float], np.ndarray]:
    """The first local axis, ``faces`` seeded latents, the move by ``step`` and the moved
    latents."""
    axis = p.local_axes[0]
    z = p.seeds_to_latents(range(faces))
    moves = {axis: step}
    return axis, z, moves, np.stack([p.edit(zi, moves) for zi in z])


def test_hold_variants_default_is_the_shipped_hold_and_variants_hold_more(
        local: tuple[Pipeline, Path]) -> None:
    import torch

    from bench.locality import _HoldTable, soften, variant_hold, view_logits

    p, _ = local
    axis, z, moves, moved = _local_move(p, 8, 3.0)
    images, probs = variant_hold(p, z, moved, moves)
    res = p.hold_edit(z, moved, moves, locality=True)
    assert np.array_equal(images, res.images)
    assert np.allclose(probs, res.probs, atol=1e-4)
    # the variants run the same loop with other readings and targets
    table = _HoldTable(p.table, ("Smiling",), 3.0)
    assert table.references == ["Male", "Young", "Smiling"]
    raw, coef = table.linear_models([p.table.index["Male"]])
    raw0, coef0 = p.table.linear_models([p.table.index["Male"]])
    assert np.allclose(raw * 3.0, raw0) and np.array_equal(coef, coef0)
    q = np.array([[0.001, 0.5, 0.999]])
    assert np.allclose(soften(q, 1.0), q, atol=1e-9)
    s = soften(q, 3.0)
    assert s[0, 1] == pytest.approx(0.5) and 0.05 < s[0, 0] < 0.1 and s[0, 2] > 0.9
    with pytest.raises(ValueError, match=r"^temperature: "):
        soften(q, 0.0)
    x = torch.rand(2, 3, 8, 8)
    views = view_logits(x, ("flip", "shift"))
    assert len(views) == 4 and torch.equal(views[1], torch.flip(x, dims=[-1]))
    assert torch.equal(views[2][..., 1:, :], x[..., :-1, :])  # 1 px down
    # a tighter tolerance with more passes only takes steps that lower each face's error
    # (the references from the start, the target from the open-loop move)
    cols = [p.attributes.index(r) for r in ("Male", "Young")]
    t = p.attributes.index(axis)
    _, p_open = p.render_edit(z, moved, moves, True)
    assert p_open is not None
    want = np.concatenate([p.label_latents(z)[:, cols], p_open[:, [t]]], axis=1)
    _, tight = variant_hold(p, z, moved, moves, tolerance=0.01, max_steps=8)
    err = np.abs(tight[:, [*cols, t]] - want).sum(axis=1)
    assert (err <= np.abs(probs[:, [*cols, t]] - want).sum(axis=1) + 1e-4).all()
    _, viewed = variant_hold(p, z, moved, moves, views=("flip",), temperature=3.0,
                             extra=("Smiling",))
    assert viewed.shape == probs.shape and np.isfinite(viewed).all()
    # the corrections rendered beyond the mask (tests/tlgan/test_judge_reading.py checks
    # where): the same loop, faces of the same shape, the references still held as closely
    for spread in ("whole", "face"):
        spread_images, spread_probs = variant_hold(p, z, moved, moves, spread=spread)
        assert spread_images.shape == images.shape and np.isfinite(spread_probs).all()
        err = np.abs(spread_probs[:, cols] - want[:, :2]).max(axis=1)
        assert (err <= np.abs(probs[:, cols] - want[:, :2]).max(axis=1) + 0.3).all()
    # the fallback keeps the shipped hold's faces unless a reference ends over the
    # threshold, and then holds those faces again over the whole image
    never, _ = variant_hold(p, z, moved, moves, spread="fallback", fallback_above=1.0)
    assert np.array_equal(never, images)
    whole, _ = variant_hold(p, z, moved, moves, spread="whole")
    fell, _ = variant_hold(p, z, moved, moves, spread="fallback")
    same = (fell == images).all(axis=(1, 2, 3))
    again = (fell == whole).all(axis=(1, 2, 3))
    assert (same | again).all() and (again & ~same).any()
    # a tighter mask (squared) changes the faces wherever the mask is partial
    mask = p.locality_mask(moves)
    assert mask is not None and ((mask > 0.05) & (mask < 0.95)).any()
    tighter, tighter_probs = variant_hold(p, z, moved, moves, mask_power=2.0)
    assert tighter.shape == images.shape and not np.array_equal(tighter, images)
    assert np.isfinite(tighter_probs).all()


def test_face_masks_are_each_faces_own_and_restrict_the_shipped_mask(
        local: tuple[Pipeline, Path]) -> None:
    from bench.locality import combine_masks, face_mask_edit, own_masks

    p, _ = local
    axis, z, moves, moved = _local_move(p, 6, 2.0)
    own = own_masks(p, z, moved, moves)
    assert own.shape == (6, 64, 64) and own.min() >= 0 and own.max() <= 1
    # scaled per face: each face reaches 1 on about a tenth of the image, and faces differ
    assert ((own >= 1).mean(axis=(1, 2)) > 0.05).all()
    assert np.abs(own[0] - own[1]).mean() > 0.01
    # a face's own mask does not depend on the other faces of the batch
    assert np.allclose(own_masks(p, z[2:3], moved[2:3], moves)[0], own[2], atol=1e-4)
    # the logit is signed by the move: moving down from z is moving up from there to z
    back = np.stack([p.edit(zi, {axis: -2.0}) for zi in z])
    down = own_masks(p, z, back, {axis: -2.0})
    assert np.allclose(down, own_masks(p, back, z, {axis: 2.0}), atol=1e-4)
    assert (down.max(axis=(1, 2)) == 1).all()
    shipped = p.locality_mask(moves)
    assert shipped is not None
    kept = combine_masks("restrict", shipped, own)
    assert (kept <= shipped + 1e-7).all()
    assert np.allclose(kept[own >= 0.5], np.broadcast_to(shipped, own.shape)[own >= 0.5])
    assert (kept[own == 0] == 0).all()
    assert np.array_equal(combine_masks("shipped", shipped, own)[3], shipped)
    with pytest.raises(ValueError, match=r"^variant: "):
        combine_masks("nope", shipped, own)
    # the shipped variant is the pipeline's local edit, plain and with references held
    images, probs = face_mask_edit(p, "shipped")(moves, True, False, z)
    want, want_probs = p.render_edit(z, moved, moves, True)
    assert np.array_equal(images, want) and np.allclose(probs, want_probs, atol=1e-5)
    held, _ = face_mask_edit(p, "shipped")(moves, True, True, z)
    assert np.array_equal(held, p.hold_edit(z, moved, moves, locality=True).images)
    # a per-face mask gives back the start's pixels wherever it is low
    faces, _ = face_mask_edit(p, "restrict")(moves, True, False, z)
    low = kept <= KEEP_BELOW
    assert low.any() and np.array_equal(faces[low], p.render(z)[low])
    assert (low.sum(axis=(1, 2)) > (shipped <= KEEP_BELOW).sum()).all()
