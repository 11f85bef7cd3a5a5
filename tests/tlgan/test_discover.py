"""tlgan.discover on the tiny pipeline: SeFa from the first layer, PCA, moves, cache."""

from __future__ import annotations

import numpy as np
import pytest

from tlgan.discover import (
    activations,
    discover,
    discover_cached,
    first_layer_weight,
    measure_moves,
)
from tlgan.pipeline import Pipeline


def test_first_layer_weight_is_the_linear_map_on_z(tiny_pipeline: Pipeline) -> None:
    w = first_layer_weight(tiny_pipeline)
    assert w.shape == (tiny_pipeline.latent_size, 4 * 8 * 16)
    z = tiny_pipeline.seeds_to_latents([1, 2])
    out = activations(tiny_pipeline, z, layer=0)  # ReLU(BN(z @ W)): BN eval is affine
    assert out.shape == (2, 4 * 8 * 16)


@pytest.mark.parametrize("method", ["sefa", "pca"])
def test_discover_rows(tiny_pipeline: Pipeline, method: str) -> None:
    found = discover(tiny_pipeline, method, 3, faces=4)
    assert found.directions.shape == (3, tiny_pipeline.latent_size)
    np.testing.assert_allclose(np.linalg.norm(found.directions, axis=1), 1.0, atol=1e-5)
    rows = found.rows(top=2)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert all(len(r["moves"]) == 2 and set(r["moves"]) <= set(tiny_pipeline.attributes)
               for r in rows)
    assert all(r["nearest_axis"]["name"] in tiny_pipeline.axis_names for r in rows)
    assert (np.diff(found.scores) <= 1e-12).all()


def test_moves_are_antisymmetric(tiny_pipeline: Pipeline) -> None:
    d = np.eye(tiny_pipeline.latent_size)[:1]
    there = measure_moves(tiny_pipeline, d, faces=3)
    back = measure_moves(tiny_pipeline, -d, faces=3)
    np.testing.assert_allclose(there, -back, atol=1e-6)
    with pytest.raises(ValueError, match=r"^faces:"):
        measure_moves(tiny_pipeline, d, faces=0)


def test_bad_method_and_k(tiny_pipeline: Pipeline) -> None:
    with pytest.raises(ValueError, match=r"^method:"):
        discover(tiny_pipeline, "ica", 2)
    with pytest.raises(ValueError, match=r"^k:"):
        discover(tiny_pipeline, "sefa", 0)


def test_cache_answers_fewer_directions(tiny_pipeline: Pipeline) -> None:
    pipe = Pipeline(tiny_pipeline.generator, tiny_pipeline.extractor, tiny_pipeline.bundle)
    big = discover_cached(pipe, "sefa", 4)
    small = discover_cached(pipe, "sefa", 2)
    np.testing.assert_array_equal(small.directions, big.directions[:2])
    np.testing.assert_array_equal(small.moves, big.moves[:2])
