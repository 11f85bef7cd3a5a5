"""tlgan.axis_work.discovery on the tiny pipeline: SeFa from the first layer, PCA, moves, cache."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

from tlgan.axis_work.discovery import (
    PCA_SAMPLES,
    activations,
    discover,
    discover_cached,
    find_directions,
    first_layer_weight,
    measure_moves,
    pca_latents,
)
from tlgan.pipeline import Pipeline, Stopped


def test_first_layer_weight_is_the_linear_map_on_z(tiny_pipeline: Pipeline) -> None:
    w = first_layer_weight(tiny_pipeline)
    assert w.shape == (tiny_pipeline.latent_size, 4 * 8 * 16)
    z = tiny_pipeline.seeds_to_latents([1, 2])
    out = activations(tiny_pipeline, z, layer=0)  # ReLU(BN(z @ W)): BN eval is affine
    assert out.shape == (2, 4 * 8 * 16)


@pytest.mark.parametrize("method", ["sefa", pytest.param("pca", marks=pytest.mark.slow)])
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


def test_pca_does_not_see_concurrent_renders(tiny_pipeline: Pipeline) -> None:
    """Other threads rendering on the same generator during PCA discovery change neither
    its result nor their faces (issue #23: a hook on the shared generator recorded them)."""
    alone = discover(tiny_pipeline, "pca", 3, faces=2)
    gen = tiny_pipeline.generator
    z = tiny_pipeline.seeds_to_latents(range(5))
    reference = gen.render_tensor(z).clone()
    done = threading.Event()
    renders: list[int] = []
    wrong: list[float] = []

    def render_forever() -> None:
        while not done.is_set():
            got = gen.render_tensor(z)
            renders.append(len(got))
            wrong.append(float((got - reference).abs().max()))

    threads = [threading.Thread(target=render_forever) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        busy = discover(tiny_pipeline, "pca", 3, faces=2)
    finally:
        done.set()
        for t in threads:
            t.join()
    assert len(renders) >= 3  # the renders did run alongside
    np.testing.assert_array_equal(busy.directions, alone.directions)
    np.testing.assert_array_equal(busy.scores, alone.scores)
    assert max(wrong) == 0.0
    assert not any(m._forward_hooks for m in gen.module.modules())


def test_activations_stop_at_the_layer_on_a_copy(tiny_pipeline: Pipeline) -> None:
    """The activations equal the shared module's intermediate output, computed without
    running the layers after it."""
    gen = tiny_pipeline.generator
    z = tiny_pipeline.seeds_to_latents(range(7))
    got: list[torch.Tensor] = []
    relu = [m for m in gen.module.modules() if isinstance(m, torch.nn.ReLU)][1]
    handle = relu.register_forward_hook(lambda _m, _i, out: got.append(out.flatten(1)))
    try:
        gen.render_tensor(z)
    finally:
        handle.remove()
    np.testing.assert_allclose(activations(tiny_pipeline, z, batch=3), got[0].numpy(),
                               rtol=1e-5, atol=1e-6)


def _count_forwards(pipeline: Pipeline) -> tuple[list[int], Any]:
    """Count forward passes of the generator's module (its copies keep the pre-hook)."""
    calls: list[int] = []
    handle = pipeline.generator.module.register_forward_pre_hook(
        lambda _m, _i: calls.append(1))
    return calls, handle


def test_stopped_pca_stops_between_chunks(tiny_pipeline: Pipeline) -> None:
    """Abandoned PCA discovery stops within one chunk of forward passes of the stop (issue
    #24: the stop was only checked after sampling and the SVD)."""
    pipe = Pipeline(tiny_pipeline.generator, tiny_pipeline.extractor, tiny_pipeline.bundle)
    forwards, handle = _count_forwards(pipe)
    try:
        with pytest.raises(Stopped):
            discover(pipe, "pca", 3, faces=2, should_stop=lambda: len(forwards) >= 2)
    finally:
        handle.remove()
    assert len(forwards) == 2  # forward chunks, of the 8 an unstopped run takes:
    forwards, handle = _count_forwards(pipe)
    try:
        find_directions(pipe, "pca", 3)
    finally:
        handle.remove()
    assert len(forwards) == 8


@pytest.mark.parametrize("stop_at", [1, 5, 9, 12, 20])
def test_every_step_of_pca_checks_the_stop(tiny_pipeline: Pipeline, stop_at: int) -> None:
    """Forward chunks (asks 1-8), the Gram block (9) and eigen iterations (10 on) each ask;
    the first true answer ends the work (no further step runs and asks again)."""
    asked: list[int] = []
    find_directions(tiny_pipeline, "pca", 3, should_stop=lambda: bool(asked.append(1)))
    assert len(asked) > 20
    asked.clear()

    def stop() -> bool:
        asked.append(1)
        return len(asked) >= stop_at

    with pytest.raises(Stopped):
        find_directions(tiny_pipeline, "pca", 3, should_stop=stop)
    assert len(asked) == stop_at


def test_inconsistent_activations_are_an_internal_error(
        tiny_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own arrays disagreeing is a RuntimeError (HTTP 500), never a ValueError that the
    API would answer as the client's fault (422)."""
    monkeypatch.setattr("tlgan.axis_work.discovery.activations",
                        lambda p, z, **_: np.ones((len(z) + 3, 8), np.float32))
    with pytest.raises(RuntimeError, match="activations for"):
        find_directions(tiny_pipeline, "pca", 2)
    monkeypatch.setattr("tlgan.axis_work.discovery.activations",
                        lambda p, z, **_: np.full((len(z), 8), np.nan, np.float32))
    with pytest.raises(RuntimeError, match="NaN"):
        find_directions(tiny_pipeline, "pca", 2)
    assert len(pca_latents(tiny_pipeline)) == PCA_SAMPLES
