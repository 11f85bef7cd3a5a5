"""Local edits (#28): masks shipped with the bundle, locality off renders as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from axes.bundle import attach_masks, load
from tlgan.locality import learn_masks
from tlgan.pipeline import Pipeline
from tlgan_base.artifact import ArtifactError


@pytest.fixture(scope="module")
def local(tiny_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Pipeline, Path]:
    from tlgan.testing import tiny_bundle_with_samples

    folder = tmp_path_factory.mktemp("bundle") / "b"
    p = tiny_bundle_with_samples(tiny_pipeline, folder, n=200)
    masks, meta = learn_masks(p, faces=32, global_area=1.0)  # random faces: wide masks
    bundle = attach_masks(folder, masks, meta)
    return Pipeline(generator=p.generator, extractor=p.extractor, bundle=bundle), folder


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


def test_locality_requested_without_masks_names_the_field(tiny_pipeline: Pipeline) -> None:
    assert not tiny_pipeline.has_locality
    assert tiny_pipeline.resolve_locality(None) is False
    assert tiny_pipeline.resolve_locality(False) is False
    with pytest.raises(ValueError, match=r"^locality: .*ships no local-edit masks"):
        tiny_pipeline.resolve_locality(True)
