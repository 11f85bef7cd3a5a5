"""Latent spaces: a generator's declared prior (mean, covariance) and mapped space w.

Two tiny seeded generators from ``tlgan.testing``: one with a mapping network (spaces z and
w) and one whose z has a non-standard Gaussian prior (an autoencoder-like decoder).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from axes.bundle import AxisBundle
from tlgan.axis_work.bundle_store import load_bundle
from tlgan.generators.base import FaceGenerator
from tlgan.latents import (
    LatentSpace,
    candidate_latents,
    interpolate,
    sample_latent,
    sample_latents,
    slerp_prior,
    truncate,
)
from tlgan.pipeline import Pipeline
from tlgan.testing import (
    TINY_LATENT,
    TINY_W,
    calibrate_extractor,
    tiny_bundle,
    tiny_extractor,
    tiny_gaussian_generator,
    tiny_gaussian_prior,
    tiny_generator,
    tiny_mapped_generator,
)
from tlgan_base.artifact import ArtifactError


# ----------------------------------------------------------------- LatentSpace itself
def test_standard_space_keeps_the_historical_latents_bit_for_bit() -> None:
    space = LatentSpace("z", 100)
    assert space.is_standard and np.array_equal(space.center, np.zeros(100))
    for seed in (0, 5, 2**40):
        assert np.array_equal(sample_latent(seed, space), sample_latent(seed, 100))
        assert np.array_equal(sample_latent(seed, space, 0.7), sample_latent(seed, 100, 0.7))
    assert np.array_equal(candidate_latents(3, 4, space, 0.5), candidate_latents(3, 4, 100, 0.5))
    gen = tiny_generator()
    assert gen.space_names == ("z",) and gen.latent_space.is_standard
    assert np.array_equal(gen.sample_latents(range(4), 0.8), sample_latents(range(4), 16, 0.8))
    assert "latent_spaces" not in gen.describe()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"name": "not a name", "size": 4}, "name"),
    ({"name": "z", "size": 0}, "size"),
    ({"name": "z", "size": 3, "mean": [0.0, 1.0]}, "mean"),
    ({"name": "z", "size": 2, "mean": [0.0, np.nan]}, "mean"),
    ({"name": "z", "size": 2, "cov": np.eye(3)}, "cov"),
    ({"name": "z", "size": 2, "cov": [[1.0, 0.5], [0.0, 1.0]]}, "cov: must be symmetric"),
    ({"name": "z", "size": 2, "cov": [[1.0, 2.0], [2.0, 1.0]]}, "cov: must be positive"),
])
def test_latent_space_checks_its_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LatentSpace(**kwargs)  # type: ignore[arg-type]


def test_gaussian_prior_samples_match_the_declared_mean_and_covariance() -> None:
    space = tiny_gaussian_prior()
    assert space.mean is not None and space.cov is not None
    z32 = sample_latents(range(20_000), space)
    assert z32.dtype == np.float32 and z32.shape == (20_000, TINY_LATENT)
    z = z32.astype(np.float64)
    scale = np.sqrt(np.diag(space.cov))
    # standard error of a mean is sd / sqrt(n) ~ 0.007 sd; of a covariance entry ~ 0.01
    np.testing.assert_allclose(z.mean(axis=0), space.mean, atol=0.04 * scale.max())
    np.testing.assert_allclose(np.cov(z.T), space.cov, atol=0.05 * float(space.cov.max()))
    # the same seed gives the same latent, and it is the seed's standard draw, coloured
    eps = sample_latent(7, TINY_LATENT).astype(np.float64)
    assert space.chol is not None
    np.testing.assert_allclose(sample_latent(7, space), space.mean + space.chol @ eps,
                               rtol=1e-5, atol=1e-5)
    assert np.array_equal(sample_latent(7, space), sample_latent(7, space))


def test_truncation_pulls_toward_the_prior_mean() -> None:
    space = tiny_gaussian_prior()
    assert space.mean is not None
    z = sample_latents(range(10), space)
    np.testing.assert_allclose(truncate(z, 0.0, space), np.broadcast_to(space.mean, z.shape),
                               atol=1e-6)
    assert np.array_equal(truncate(z, 1.0, space), z)
    half = truncate(z, 0.5, space)
    np.testing.assert_allclose(half, space.mean + 0.5 * (z - space.mean), atol=1e-5)
    # sampling with psi is the same as truncating the psi = 1 sample
    np.testing.assert_allclose(sample_latents(range(10), space, 0.5), half, atol=1e-5)
    # a tiny psi lands next to the mean, not next to 0
    tight = sample_latents(range(10), space, 1e-6)
    np.testing.assert_allclose(tight, np.broadcast_to(space.mean, tight.shape), atol=1e-4)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="psi"):
            truncate(z, bad, space)
    with pytest.raises(ValueError, match="latents"):
        truncate(z[:, :3], 0.5, space)


def test_interpolation_around_the_prior_mean_has_exact_endpoints() -> None:
    space = tiny_gaussian_prior()
    assert space.mean is not None and space.chol is not None
    a, b = sample_latents([1, 2], space)
    path = interpolate(a, b, [0.0, 0.25, 0.5, 1.0], "slerp", space)
    assert np.array_equal(path[0], a) and np.array_equal(path[-1], b)
    # slerp in whitened coordinates: the whitened norm moves linearly between the ends
    def whitened_norm(x: np.ndarray) -> float:
        return float(np.linalg.norm(np.linalg.solve(space.chol, x - space.mean)))

    na, nb = whitened_norm(a), whitened_norm(b)
    assert whitened_norm(path[2]) == pytest.approx(0.5 * (na + nb), rel=1e-4)
    # two latents the same whitened distance from the mean interpolate through points that
    # far away too (plain slerp around 0 would not)
    ub = np.linalg.solve(space.chol, b - space.mean)
    c = (space.mean + space.chol @ (na * ub / np.linalg.norm(ub))).astype(np.float32)
    assert whitened_norm(c) == pytest.approx(na, rel=1e-5)
    assert whitened_norm(slerp_prior(a, c, 0.3, space)) == pytest.approx(na, rel=1e-4)
    # the standard space is the plain slerp
    s = LatentSpace("z", TINY_LATENT)
    za, zb = sample_latents([1, 2], TINY_LATENT)
    assert np.array_equal(interpolate(za, zb, [0.3], "slerp", s),
                          interpolate(za, zb, [0.3], "slerp"))
    with pytest.raises(ValueError, match="latent_a"):
        slerp_prior(a[:3], b[:3], 0.5, space)


# ------------------------------------------------------- generator with a Gaussian prior
def test_gaussian_generator_pipeline_samples_truncates_and_interpolates_in_its_prior() -> None:
    gen = tiny_gaussian_generator()
    space = gen.latent_space
    assert not space.is_standard and gen.space_names == ("z",)
    assert gen.describe()["latent_spaces"][0] == {"name": "z", "size": TINY_LATENT,
                                                  "prior": "gaussian"}
    pipe = Pipeline(generator=gen)
    z = pipe.seeds_to_latents([3, 4])
    assert np.array_equal(z, sample_latents([3, 4], space))
    assert np.array_equal(pipe.seeds_to_latents([3]), pipe.seeds_to_latents([3]))
    assert pipe.render(z).shape == (2, 64, 64, 3)
    path = pipe.interpolate(z[0], z[1], [0.0, 0.5, 1.0])
    assert np.array_equal(path[0], z[0]) and np.array_equal(path[-1], z[1])
    np.testing.assert_allclose(path[1], slerp_prior(z[0], z[1], 0.5, space))
    with pytest.raises(ValueError, match="prior"):
        FaceGenerator(module=gen.module, name="x", latent_size=TINY_LATENT + 1, resolution=64,
                      prior=space)


def test_gaussian_generator_axes_fit_and_edit_in_its_prior() -> None:
    gen = tiny_gaussian_generator()
    ext = tiny_extractor()
    calibrate_extractor(ext, gen.render_tensor(gen.sample_latents(range(128))))
    bundle = tiny_bundle(gen, ext, n=1500)
    assert bundle.latent_space == "z"
    pipe = Pipeline(generator=gen, extractor=ext, bundle=bundle)
    z = pipe.seeds_to_latents([11])[0]
    moved = pipe.edit(z, {"Smiling": 2.0})
    before = pipe.label_latents(z[None])[0, ext.attributes.index("Smiling")]
    after = pipe.label_latents(moved[None])[0, ext.attributes.index("Smiling")]
    assert after > before


# ------------------------------------------------------- generator with a mapping network
def test_mapped_generator_declares_z_and_w_and_renders_consistently() -> None:
    gen = tiny_mapped_generator()
    assert gen.space_names == ("z", "w")
    assert gen.space_sizes() == {"z": TINY_LATENT, "w": TINY_W}
    z = gen.sample_latents(range(6))
    w = gen.sample_latents(range(6), space="w")
    assert w.shape == (6, TINY_W) and w.dtype == np.float32
    np.testing.assert_array_equal(w, gen.to_space(z, "w"))
    # the face of a seed is the same rendered from z or from its w
    np.testing.assert_allclose(gen.render_tensor(w, "w").numpy(),
                               gen.render_tensor(z).numpy(), atol=1e-5)
    # truncation in w pulls toward the mean of w (StyleGAN's truncation trick)
    w_space = gen.space("w")
    assert w_space.mean is not None
    np.testing.assert_allclose(gen.sample_latents(range(6), 0.5, "w"),
                               w_space.mean + 0.5 * (w - w_space.mean), atol=1e-5)
    with torch.inference_mode():
        mapped = gen.mapping(torch.as_tensor(sample_latents(range(4096), TINY_LATENT)))  # type: ignore[misc]
    np.testing.assert_allclose(w_space.mean, mapped.double().mean(0).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match=r"z: expected shape \(N, 12\)"):
        gen.render(z, "w")
    with pytest.raises(ValueError, match="no latent space 'v'"):
        gen.space("v")
    assert [s["name"] for s in gen.describe()["latent_spaces"]] == ["z", "w"]


def _w_setup() -> tuple[FaceGenerator, Pipeline]:
    gen = tiny_mapped_generator()
    ext = tiny_extractor()
    calibrate_extractor(ext, gen.render_tensor(gen.sample_latents(range(128))))
    bundle = tiny_bundle(gen, ext, n=1500, space="w")
    return gen, Pipeline(generator=gen, extractor=ext, bundle=bundle)


def test_edits_in_w_render_from_w_consistently(tmp_path: Path) -> None:
    gen, pipe = _w_setup()
    assert pipe.bundle is not None and pipe.bundle.latent_space == "w"
    assert pipe.latent_space == "w" and pipe.latent_size == TINY_W
    assert "w in R^12" in pipe.summary()
    w = pipe.seeds_to_latents([5, 6])
    np.testing.assert_array_equal(w, gen.sample_latents([5, 6], space="w"))
    # seed 5's face is the same through the z pipeline and the w pipeline
    np.testing.assert_allclose(pipe.render(w[:1]).astype(int),
                               Pipeline(generator=gen).render(gen.sample_latents([5])).astype(int),
                               atol=1)
    moved = pipe.edit(w[0], {"Smiling": 1.5})
    assert moved.shape == (TINY_W,)
    np.testing.assert_allclose(moved - w[0], 1.5 * pipe.bundle.direction("Smiling"), atol=1e-5)
    images, probs = pipe.render_and_label(np.stack([w[0], moved]))
    assert probs is not None
    np.testing.assert_array_equal(images, gen.render(np.stack([w[0], moved]), "w"))
    # the best-calibrated axis fitted in w moves its attribute, on average over faces (the
    # tiny random extractor's attributes are nearly collinear, so the other orthogonalized
    # axes keep little of their attribute)
    name = pipe.bundle.names[int(np.argmax(pipe.bundle.calibration))]
    col = pipe.attributes.index(name)
    many = pipe.seeds_to_latents(range(100, 164))
    up = np.stack([pipe.edit(x, {name: 1.0}) for x in many])
    down = np.stack([pipe.edit(x, {name: -1.0}) for x in many])
    assert pipe.label_latents(up)[:, col].mean() > pipe.label_latents(down)[:, col].mean() + 0.05
    np.testing.assert_allclose(pipe.label_latents(np.stack([w[0], moved])), probs, atol=1e-6)
    path = pipe.interpolate(w[0], w[1], [0.0, 1.0])
    assert np.array_equal(path, w)
    # conditioned starts are w latents too
    starts = pipe.conditioned_starts([5], {"Smiling": 0.9}, candidates=3)
    assert starts.shape == (1, TINY_W)


def test_w_bundle_round_trips_and_refuses_a_generator_without_w(tmp_path: Path) -> None:
    gen, pipe = _w_setup()
    bundle = pipe.bundle
    assert bundle is not None
    bundle.save(tmp_path / "w")
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    assert cfg["latent_space"] == "w" and cfg["latent_size"] == TINY_W
    again = AxisBundle.load(tmp_path / "w")
    assert again == bundle and again.latent_space == "w"
    # the id records the space: the same axes in z are another bundle
    same_in_z = AxisBundle(names=bundle.names, directions=bundle.directions,
                           raw_directions=bundle.raw_directions, references=bundle.references,
                           stats=bundle.stats, provenance=bundle.provenance)
    assert same_in_z.id != bundle.id
    loaded = load_bundle(tmp_path / "w", generator=gen.name, latent_size=gen.latent_size,
                         spaces=gen.space_sizes())
    assert loaded == bundle
    z_only = tiny_generator(latent_size=TINY_W)
    with pytest.raises(ArtifactError, match="latent space 'w'"):
        load_bundle(tmp_path / "w", generator=gen.name, latent_size=z_only.latent_size,
                    spaces=z_only.space_sizes())
    with pytest.raises(ValueError, match="latent space 'w'"):
        Pipeline(generator=z_only, bundle=bundle)
    # an edit keeps the space
    assert bundle.with_stats({}).latent_space == "w"


def test_bundles_without_a_latent_space_key_load_as_z(tmp_path: Path) -> None:
    gen = tiny_generator()
    ext = tiny_extractor()
    bundle = tiny_bundle(gen, ext, n=600)
    bundle.save(tmp_path / "b")
    cfg_path = tmp_path / "b" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    assert cfg["latent_space"] == "z"
    del cfg["latent_space"]  # a bundle written before spaces existed
    cfg_path.write_text(json.dumps(cfg))
    old = load_bundle(tmp_path / "b", generator=gen.name, latent_size=gen.latent_size,
                      spaces=gen.space_sizes())
    assert old.latent_space == "z" and old.id == bundle.id
    with pytest.raises(ArtifactError, match="latent space 'z'"):
        load_bundle(tmp_path / "b", generator=gen.name, latent_size=16, spaces={"w": 16})


def test_sample_cache_and_fit_in_w(tmp_path: Path) -> None:
    from axes.samples import load_samples
    from tlgan.axis_work.sampling import build_sample_cache
    from tlgan.axis_work.workflow import fit_bundle, reference_drag

    gen, pipe = _w_setup()
    assert pipe.extractor is not None
    out = build_sample_cache(gen, pipe.extractor, tmp_path / "samples", n=600, chunk=256,
                             space="w", progress=False)
    cache = load_samples(out)
    assert cache.latent_space == "w" and cache.config["latent_space"] == "w"
    np.testing.assert_array_equal(cache.z, gen.sample_latents(range(600), space="w"))
    bundle = fit_bundle(out, tmp_path / "bundle", progress=False)
    assert bundle.latent_space == "w" and bundle.latent_size == TINY_W
    assert AxisBundle.load(tmp_path / "bundle").latent_space == "w"
    drag = reference_drag(Pipeline(generator=gen, extractor=pipe.extractor),
                          np.asarray(bundle.directions), ["Male"], faces=5, progress=False,
                          space="w")
    assert drag.shape == (len(bundle), 1) and np.isfinite(drag).all()
    with pytest.raises(ValueError, match="no latent space 'w'"):
        build_sample_cache(tiny_generator(), pipe.extractor, tmp_path / "x", n=10,
                           space="w", progress=False)


# ----------------------------------------------------------------------- plug-in prior
def _plugin(tmp_path: Path, prior: object) -> Path:
    from tlgan.generators.checks import sha256_file

    gen = tiny_generator()
    torch.jit.trace(gen.module, torch.zeros(1, TINY_LATENT)).save(str(tmp_path / "g.pt"))
    cfg = {"kind": "generator-plugin", "name": "ae", "format": "torchscript", "file": "g.pt",
           "sha256": sha256_file(tmp_path / "g.pt"), "latent_size": TINY_LATENT,
           "resolution": 64, "prior": prior}
    path = tmp_path / "ae.json"
    path.write_text(json.dumps(cfg))
    return path


def test_plugin_declares_its_prior_inline_or_as_npy_files(tmp_path: Path) -> None:
    from tlgan.generators import load_generator
    from tlgan.generators.checks import sha256_file

    space = tiny_gaussian_prior()
    assert space.mean is not None and space.cov is not None
    inline = load_generator(str(_plugin(tmp_path, {"mean": space.mean.tolist(),
                                                   "cov": space.cov.tolist()})))
    np.testing.assert_array_equal(inline.latent_space.mean, space.mean)
    np.testing.assert_array_equal(inline.sample_latents([4]), sample_latents([4], space))
    np.save(tmp_path / "cov.npy", space.cov)
    from_file = load_generator(str(_plugin(tmp_path, {
        "cov": "cov.npy", "cov_sha256": sha256_file(tmp_path / "cov.npy")})))
    assert from_file.latent_space.mean is None
    np.testing.assert_array_equal(from_file.latent_space.cov, space.cov)
    assert load_generator(str(_plugin(tmp_path, None))).latent_space.is_standard
    for prior, match in (({"cov": "cov.npy"}, "cov_sha256"),
                         ({"cov": "cov.npy", "cov_sha256": "0" * 64}, "sha256"),
                         ({"mean": "absent.npy", "mean_sha256": "0" * 64}, "missing"),
                         ({"mean": [1.0, 2.0]}, r"prior mean: expected shape \(16,\)"),
                         ({"covariance": []}, "unknown keys"),
                         ([1, 2], "must be an object")):
        with pytest.raises(ArtifactError, match=match):
            load_generator(str(_plugin(tmp_path, prior)))
