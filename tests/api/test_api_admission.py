"""Work-aware admission, the interactive lane, no work for departed clients, queue wait."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from api_helpers import Gate, zeros_latent
from fastapi.testclient import TestClient

from api.app import create_app
from api.batching import BULK, INTERACTIVE, Batcher, JobStopped, QueueFull
from api.settings import Settings
from tlgan.latents import sample_latents
from tlgan.pipeline import Pipeline, Stopped, condition_cost, hold_cost
from tlgan.testing import serve


def _wait_for(check: Callable[[], bool], timeout: float = 10.0,
              what: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not reached in time {what()}"
        time.sleep(0.01)


# -- the batcher -----------------------------------------------------------------------------
@pytest.mark.slow
def test_admission_bounds_queued_seconds_and_retry_after_follows_the_backlog(
        tiny_pipeline: Pipeline) -> None:
    b = Batcher(tiny_pipeline, max_queue_seconds=10.0)  # not started: jobs stay queued
    b.lanes[BULK].seconds_per_pass = 0.1  # as if measured: 64 faces = 6.4 s
    z = sample_latents(range(64), 16)
    b.submit(z)  # alone in an idle lane: always admitted
    with pytest.raises(QueueFull) as err:
        b.submit(z)  # 6.4 s waiting + 6.4 s > 10 s
    assert err.value.retry_after == 7  # the backlog, rounded up
    assert "about 6 s of work waiting for the bulk lane" in str(err.value)
    # the interactive lane has its own bound: a single face still gets in
    fut = b.submit(z[:1])
    assert b.stats()["lanes"][INTERACTIVE]["queue_depth"] == 1 and not fut.done()
    assert b.stats()["rejected"] == 1
    b.stop()


def test_costs_choose_the_lane() -> None:
    b = Batcher.__new__(Batcher)
    b.interactive_cost = 8.0
    assert b.lane_for(1) == INTERACTIVE
    assert b.lane_for(hold_cost(1)) == INTERACTIVE  # a single-face edit with locks
    assert b.lane_for(condition_cost(1)) == BULK
    assert b.lane_for(64) == BULK


def test_interactive_jobs_run_while_a_heavy_job_holds_the_bulk_lane(
        tiny_pipeline: Pipeline) -> None:
    release = threading.Event()
    b = Batcher(tiny_pipeline, window_ms=0).start()
    try:
        heavy = b.submit_call(lambda p: release.wait(30), cost=condition_cost(64))
        time.sleep(0.05)
        assert heavy.running()
        quick = b.submit(sample_latents([1], 16))
        images, _ = quick.result(timeout=5)  # not behind the heavy job
        assert images.shape == (1, 64, 64, 3) and not heavy.done()
    finally:
        release.set()
        b.stop()
    assert heavy.result(timeout=5) is True


def test_a_cancelled_queued_job_never_runs_and_leaves_the_backlog(
        tiny_pipeline: Pipeline) -> None:
    gated = Gate(tiny_pipeline)
    b = Batcher(gated, window_ms=0).start()  # type: ignore[arg-type]
    try:
        first = b.submit(sample_latents([1], 16))
        assert gated.entered.wait(10)
        second = b.submit(sample_latents([2], 16))
        assert b.stats()["lanes"][INTERACTIVE]["queue_depth"] == 1
        assert second.abandon() is True  # not started: cancelled
        assert b.queue_depth == 0 and b.backlog_seconds(INTERACTIVE) > 0  # the running one
        gated.gate.set()
        first.result(timeout=10)
    finally:
        b.stop()
    assert gated.rendered == 1 and b.stats()["cancelled"] == 1


def test_a_running_stoppable_job_stops_between_steps(tiny_pipeline: Pipeline) -> None:
    b = Batcher(tiny_pipeline, window_ms=0).start()
    steps: list[int] = []
    started = threading.Event()

    def job(p: Pipeline, stop: Callable[[], bool]) -> int:
        for i in range(1000):
            started.set()
            if stop():
                raise JobStopped("stopped")
            steps.append(i)
            time.sleep(0.01)
        return len(steps)

    try:
        fut = b.submit_call(job, cost=100, stoppable=True)
        assert started.wait(10)
        assert fut.abandon() is False  # running: asked to stop
        with pytest.raises(JobStopped):
            fut.result(timeout=10)
    finally:
        b.stop()
    assert len(steps) < 1000 and b.stats()["stopped"] == 1


def test_conditioned_generation_checks_should_stop_before_every_step(
        tiny_pipeline: Pipeline) -> None:
    z = sample_latents(range(4), 16)
    asked: list[int] = []

    def stop_after_two() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(Stopped):
        tiny_pipeline.condition(z, {"Smiling": 0.999, "Male": 0.001},
                                should_stop=stop_after_two, tolerance=0.0001)
    assert len(asked) == 3
    # unstopped, the same call runs to its end and equals a run without the check
    a = tiny_pipeline.condition(z, {"Smiling": 0.9}, should_stop=lambda: False)
    b = tiny_pipeline.condition(z, {"Smiling": 0.9})
    assert np.array_equal(a.latents, b.latents) and a.unmet == b.unmet


# -- over HTTP -------------------------------------------------------------------------------
def test_max_queue_wait_gives_up_queued_requests_with_503(
        make_client: Callable[..., TestClient], tiny_pipeline: Pipeline) -> None:
    gated = Gate(tiny_pipeline)
    c = make_client(pipeline=gated, batch_window_ms=0, max_queue_wait=0.3)
    body = {"latent": zeros_latent(), "with_features": False}
    out: list[int] = []
    first = threading.Thread(target=lambda: out.append(c.post("/edit", json=body).status_code))
    first.start()
    assert gated.entered.wait(10)
    t0 = time.monotonic()
    r = c.post("/edit", json=body)
    waited = time.monotonic() - t0
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert "maximum queue wait" in r.json()["detail"]
    assert 0.25 < waited < 5
    gated.gate.set()
    first.join(30)
    assert out == [200]  # started before the wait ran out: runs to its end
    stats = c.get("/stats").json()["batcher"]
    assert stats["expired"] == 1 and gated.rendered == 1


def test_departed_clients_get_no_work_and_are_logged_499(
        tiny_pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    gated = Gate(tiny_pipeline)
    app = create_app(Settings(batch_window_ms=0), pipeline=gated)  # type: ignore[arg-type]
    body = {"latent": zeros_latent(), "with_features": False}
    with caplog.at_level(logging.INFO, logger="tlgan.access"), serve(app) as url:
        holder = threading.Thread(target=lambda: httpx.post(f"{url}/edit", json=body,
                                                            timeout=30))
        holder.start()
        assert gated.entered.wait(10)  # the interactive worker is busy
        for _ in range(5):  # five impatient clients give up after 0.2 s
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{url}/edit", json=body, timeout=0.2)
        batcher = app.state.batcher
        _wait_for(lambda: batcher.stats()["cancelled"] >= 5, what=batcher.stats)
        assert batcher.stats()["cancelled"] == 5, batcher.stats()
        assert batcher.queue_depth == 0
        gated.gate.set()
        holder.join(30)
        assert httpx.get(f"{url}/healthz").status_code == 200
        metrics = httpx.get(f"{url}/metrics").text
        assert "tlgan_jobs_cancelled_total 5.0" in metrics
        assert 'tlgan_queue_backlog_seconds{lane="interactive"} 0.0' in metrics
    assert gated.rendered == 1  # only the client that stayed got a face
    statuses = [r.tlgan_access.status for r in caplog.records
                if hasattr(r, "tlgan_access") and r.tlgan_access.path == "/edit"]
    assert sorted(statuses) == [200] + [499] * 5


def test_a_departed_clients_conditioned_job_stops_between_steps(
        tiny_pipeline: Pipeline) -> None:
    slow = Gate(tiny_pipeline, delay=0.2)  # every render takes 200 ms
    app = create_app(Settings(batch_window_ms=0), pipeline=slow)  # type: ignore[arg-type]
    body = {"seed": 3, "count": 16, "features": {"Smiling": 0.999, "Male": 0.001},
            "with_features": False}
    with serve(app) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/generate", json=body, timeout=0.3)
        batcher = app.state.batcher
        _wait_for(lambda: batcher.stats()["stopped"] == 1, what=batcher.stats)
        rendered = slow.rendered
        time.sleep(0.3)
        assert slow.rendered == rendered  # nothing more is rendered for it
    # candidates (16 x 16) + start + up to 12 steps: it stopped well before the end
    assert rendered < condition_cost(16)


def test_jobs_of_clients_known_gone_are_dropped_before_they_start(
        tiny_pipeline: Pipeline) -> None:
    """The server's own "connection lost" flag is read on the worker side, so a job whose
    client left is dropped from the queue (freeing its place) without waiting for the
    watcher task."""
    here = {"a": True, "b": True}
    b = Batcher(tiny_pipeline, queue_size=2)  # not started
    z = sample_latents([1], 16)
    fa = b.submit(z, connected=lambda: here["a"])
    b.submit(z, connected=lambda: here["b"])
    with pytest.raises(QueueFull):
        b.submit(z)
    here["a"] = False  # a's client hung up
    b.submit(z)  # its place is free again
    assert fa.cancelled() and b.queue_depth == 2 and b.stats()["cancelled"] == 1
    b.stop()


def test_connection_check_finds_uvicorns_flag_through_the_body_replay() -> None:
    from api.jobs import connection_check
    from api.middleware import _replay

    class Cycle:  # the shape of uvicorn's RequestResponseCycle
        disconnected = False

        async def receive(self) -> dict[str, Any]:
            return {"type": "http.disconnect"}

    cycle = Cycle()
    check = connection_check(_replay([], cycle.receive))
    assert check is not None and check() is True
    cycle.disconnected = True
    assert check() is False
    assert connection_check(None) is None

    async def bare() -> dict[str, Any]:
        return {}

    assert connection_check(bare) is None  # other servers: the watcher alone decides
