"""The micro-batcher: grouping, batch invariance, ordering, the bounded queue (503)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from api_helpers import Gate, detail, zeros_latent
from fastapi.testclient import TestClient

from api.batching import Batcher, BatcherStopped, QueueFull
from tlgan.latents import sample_latents
from tlgan.pipeline import Pipeline


def test_queued_jobs_share_one_forward_pass_and_match_solo_renders(
        tiny_pipeline: Pipeline) -> None:
    z = sample_latents(range(20, 30), 16)
    b = Batcher(tiny_pipeline, window_ms=50, max_batch=64)
    futures = [b.submit(z[i:i + 1]) for i in range(10)]  # queued before the worker starts
    b.start()
    try:
        results = [f.result(timeout=10) for f in futures]
    finally:
        b.stop()
    stats = b.stats()
    assert stats["batches"] == 1 and stats["batch_sizes"] == {10: 1}
    for i, (images, probs) in enumerate(results):
        solo_images, solo_probs = tiny_pipeline.render_and_label(z[i:i + 1])
        assert np.array_equal(images, solo_images)  # byte-identical faces
        assert probs is not None and solo_probs is not None
        assert np.allclose(probs, solo_probs, atol=1e-5)


def test_max_batch_splits_and_keeps_order(tiny_pipeline: Pipeline) -> None:
    z = sample_latents(range(8), 16)
    b = Batcher(tiny_pipeline, window_ms=0, max_batch=3)
    futures = [b.submit(z[i:i + 1], with_features=False) for i in range(8)]
    b.start()
    try:
        images = np.concatenate([f.result(timeout=10)[0] for f in futures])
    finally:
        b.stop()
    assert np.array_equal(images, tiny_pipeline.render(z))
    assert b.stats()["batch_sizes"] == {3: 2, 2: 1}


def test_mixed_feature_flags_and_calls(tiny_pipeline: Pipeline) -> None:
    z = sample_latents(range(3), 16)
    b = Batcher(tiny_pipeline, window_ms=0)
    f_plain = b.submit(z[:1], with_features=False)
    f_call = b.submit_call(lambda p: p.latent_size)
    f_feat = b.submit(z[1:3], with_features=True)
    b.start()
    try:
        assert f_plain.result(timeout=10)[1] is None
        assert f_call.result(timeout=10) == 16
        images, probs = f_feat.result(timeout=10)
    finally:
        b.stop()
    assert images.shape == (2, 64, 64, 3) and probs is not None and probs.shape == (2, 5)


def test_errors_reach_the_caller_and_the_worker_survives(tiny_pipeline: Pipeline) -> None:
    b = Batcher(tiny_pipeline).start()
    try:
        bad = b.submit(np.full((1, 16), np.nan, np.float32))
        with pytest.raises(ValueError, match="NaN"):
            bad.result(timeout=10)
        ok = b.submit(sample_latents([1], 16)).result(timeout=10)
        assert ok[0].shape == (1, 64, 64, 3)
    finally:
        b.stop()


def test_full_queue_raises_and_stop_rejects(tiny_pipeline: Pipeline) -> None:
    b = Batcher(tiny_pipeline, queue_size=2)  # not started: nothing drains the queue
    z = sample_latents([1], 16)
    b.submit(z)
    b.submit(z)
    with pytest.raises(QueueFull):
        b.submit(z)
    assert b.stats()["rejected"] == 1 and b.queue_depth == 2
    b.stop()
    with pytest.raises(BatcherStopped):
        b.submit(z)


def test_concurrent_http_requests_are_batched(make_client: Callable[..., TestClient]) -> None:
    c = make_client(batch_window_ms=200)
    out: dict[int, Any] = {}

    def call(i: int) -> None:
        out[i] = c.post("/generate", json={"seed": 40 + i, "with_features": False}).json()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stats = c.get("/stats").json()["batcher"]
    assert stats["faces"] == 6 and stats["max_batch_size"] > 1, stats
    alone = c.post("/generate", json={"seed": 40, "count": 6, "with_features": False}).json()
    assert [out[i]["faces"][0]["image"] for i in range(6)] == [f["image"] for f in alone["faces"]]


def test_full_queue_answers_503_with_retry_after(make_client: Callable[..., TestClient],
                                                 tiny_pipeline: Pipeline) -> None:
    gated = Gate(tiny_pipeline)
    c = make_client(pipeline=gated, queue_size=1, batch_window_ms=0)
    body = {"latent": zeros_latent(), "with_features": False}
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(c.post("/edit", json=body).status_code))
    first.start()
    assert gated.entered.wait(10)  # the worker is busy with the first request
    second = threading.Thread(target=lambda: results.append(c.post("/edit", json=body).status_code))
    second.start()
    batcher = c.app.state.batcher
    deadline = time.monotonic() + 10
    while batcher.queue_depth < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batcher.queue_depth == 1  # the second request fills the queue
    r = c.post("/edit", json=body)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert detail(r).startswith("server busy: the render queue is full")
    gated.gate.set()
    first.join(30)
    second.join(30)
    assert results == [200, 200]
    assert c.get("/stats").json()["batcher"]["rejected"] == 1


def test_a_reload_swaps_the_models_only_for_jobs_queued_after_it(
        tiny_pipeline: Pipeline) -> None:
    """A job runs on the pipeline it was queued with (its request's): swapping the batcher's
    pipeline (SIGHUP reload, api/reload.py) changes later jobs only, and jobs on the two
    pipelines never share a forward pass."""
    from tlgan.testing import tiny_pipeline as make

    other = make(seed=5)
    z = sample_latents(range(3), 16)
    b = Batcher(tiny_pipeline, window_ms=50, max_batch=64)
    before = [b.submit(z[i:i + 1]) for i in range(3)]
    call_before = b.submit_call(lambda p: p)
    b.pipeline = other  # what the reload does, while those jobs wait
    after = [b.submit(z[i:i + 1]) for i in range(3)]
    call_after = b.submit_call(lambda p: p)
    b.start()
    try:
        old = [f.result(timeout=10)[0] for f in before]
        new = [f.result(timeout=10)[0] for f in after]
        assert call_before.result(timeout=10) is tiny_pipeline
        assert call_after.result(timeout=10) is other
    finally:
        b.stop()
    for i in range(3):
        assert np.array_equal(old[i], tiny_pipeline.render_and_label(z[i:i + 1])[0])
        assert np.array_equal(new[i], other.render_and_label(z[i:i + 1])[0])
    assert not np.array_equal(old[0], new[0])
