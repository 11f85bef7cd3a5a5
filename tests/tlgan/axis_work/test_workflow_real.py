"""The add-an-axis workflow with the real default models and CelebA labels (a column treated
as new), end to end; and the shipped default bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.real_weights


@pytest.fixture(scope="module")
def real_models():  # type: ignore[no-untyped-def]
    from feature_extractor.extractor_weights import load_extractor
    from tlgan.generators import load_generator

    return load_generator(None, "cpu"), load_extractor(None, "cpu")


@pytest.mark.slow
def test_add_a_celeba_column_as_a_new_axis(tmp_path: Path, celeba: Path,
                                           real_models) -> None:  # type: ignore[no-untyped-def]
    from tlgan.axis_work.sampling import build_sample_cache
    from tlgan.axis_work.workflow import add_axis, fit_bundle, read_labels

    gen, ext = real_models
    samples = build_sample_cache(gen, ext, tmp_path / "samples", n=3000, seed=0,
                                 progress=False)
    fit_bundle(samples, tmp_path / "bundle", progress=False)
    labelled = read_labels(celeba / "list_attr_celeba.txt", celeba, "Smiling")
    keep = slice(0, 2000)
    labelled.paths, labelled.labels = labelled.paths[keep], labelled.labels[keep]
    new, figures = add_axis("Smiling_new", labelled, tmp_path / "bundle", ext,
                            samples=samples, progress=False)
    assert figures["head_val_auc"] > 0.85  # the head learned Smiling from 2000 CelebA faces
    cos = float(new.direction("Smiling_new") @ new.direction("Smiling"))
    assert cos > 0.6, cos  # and found (nearly) the same direction in z as the fitted axis
    for ref in ("Male", "Young"):
        assert abs(float(new.direction("Smiling_new") @ new.direction(ref))) < 1e-5


def test_shipped_bundle_matches_the_default_models(real_models) -> None:  # type: ignore[no-untyped-def]
    from tlgan.axis_work.bundle_store import load_bundle

    gen, ext = real_models
    bundle = load_bundle(None, generator=gen.name, latent_size=gen.latent_size,
                         extractor=ext.name, generator_sha256=gen.sha256,
                         extractor_sha256=ext.sha256)
    assert bundle.names == ext.attributes and bundle.references == ["Male", "Young"]
    assert bundle.provenance["n"] >= 50_000
    refs = bundle.directions[[bundle.index("Male"), bundle.index("Young")]]
    assert np.abs(np.delete(bundle.directions, [bundle.index("Male"), bundle.index("Young")],
                            axis=0) @ refs.T).max() < 1e-5


@pytest.mark.real_weights
def test_every_registered_generator_serves_its_shipped_axes() -> None:
    from tlgan.assembly import load_pipeline
    from tlgan.axis_work.bundle_store import BUNDLES
    from tlgan.generators import DEFAULT, GENERATORS

    assert set(BUNDLES) == set(GENERATORS)
    for name in GENERATORS:
        p = load_pipeline(generator=name)  # refuses a bundle that does not match
        assert p.bundle is not None and p.bundle.provenance["generator"] == name
        assert p.bundle.provenance["generator_sha256"] == p.generator.sha256
        assert p.bundle.provenance["extractor_sha256"] == p.extractor.sha256  # type: ignore[union-attr]
    default = load_pipeline().bundle
    assert default is not None
    prov = default.provenance
    assert prov["generator"] == DEFAULT and prov["n"] >= 100_000
    assert prov["reference_orthogonalization"] == "mutual"
    assert prov["fit_conditioning"].startswith("non-reference axes fitted with the references'")
    # each reference is orthogonal to the other's raw direction: moving one holds the other
    m, y = default.index("Male"), default.index("Young")
    assert abs(float(default.directions[m] @ default.raw_directions[y])) < 1e-5
    assert abs(float(default.directions[y] @ default.raw_directions[m])) < 1e-5
