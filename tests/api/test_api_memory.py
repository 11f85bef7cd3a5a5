"""The memory one request may use (max_request_memory_mb) and all admitted jobs together
(max_memory_mb): refused before any work, and admission keeps the sum under the budget."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.batching import Batcher, QueueFull
from api.memory import faces_memory, fit_memory
from api.settings import Settings, load_settings
from tlgan.axis_work.discovery import find_directions, pca_memory
from tlgan.pipeline import Pipeline
from tlgan_base.domain_errors import ConfigError


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the model jobs submitted (render or call)."""
    seen: list[str] = []
    submit, submit_call = Batcher.submit, Batcher.submit_call

    def render(self: Batcher, *a: Any, **kw: Any) -> Any:
        seen.append("render")
        return submit(self, *a, **kw)

    def call(self: Batcher, *a: Any, **kw: Any) -> Any:
        seen.append("call")
        return submit_call(self, *a, **kw)

    monkeypatch.setattr(Batcher, "submit", render)
    monkeypatch.setattr(Batcher, "submit_call", call)
    return seen


def test_requests_above_the_memory_limit_get_422_naming_the_field_before_any_work(
        make_client: Callable[..., TestClient], tiny_pipeline: Pipeline,
        submitted: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    c = make_client(max_request_memory_mb=2, max_memory_mb=2)
    native = tiny_pipeline.resolution
    assert faces_memory(64, None, native, 64) > 2 * 2**20 > faces_memory(1, None, native, 64)
    r = c.post("/generate", json={"seed": 1, "count": 64})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("count, size: 64 faces of ") and "MiB of memory" in detail
    assert "limit of 2 MiB per request" in detail
    assert [e["field"] for e in r.json()["errors"]] == ["count", "size"]

    z = tiny_pipeline.seeds_to_latents(list(range(40)))
    examples = [{"latent": zi.tolist(), "label": i % 2} for i, zi in enumerate(z)]
    assert fit_memory(40, native, 64) > 2 * 2**20
    r = c.post("/axes/fit", json={"name": "mine", "examples": examples})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("examples: 40 examples would take about ")

    # a cached answer costs no memory and is served (another test may have computed it on
    # this session's pipeline): the limit is for computing it
    monkeypatch.delitem(tiny_pipeline.__dict__, "_discovered", raising=False)
    r = c.get("/axes/discover", params={"method": "pca", "k": 2})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("method: method pca on this generator would take")
    assert submitted == []  # refused before any model work
    # one face is within the limit
    assert c.post("/generate", json={"seed": 1, "count": 1}).status_code == 200
    assert submitted == ["render"]


def test_pca_is_bounded_by_the_setting(make_client: Callable[..., TestClient],
                                       tiny_pipeline: Pipeline) -> None:
    """The PCA bound is the per-request setting, not a constant: at the default it runs,
    and below its estimate find_directions refuses naming method."""
    need = pca_memory(tiny_pipeline)
    assert need >= 2 * 2000 * 2000 * 8  # the Gram matrix and its eigenvectors
    with pytest.raises(ValueError, match=r"^method: .* more than the 1 MiB it may use"):
        find_directions(tiny_pipeline, "pca", 2, max_bytes=2**20)
    r = make_client().get("/axes/discover", params={"method": "pca", "k": 2})
    assert r.status_code == 200, r.text


def test_memory_budget_refuses_a_second_heavy_job_while_the_first_runs(
        make_client: Callable[..., TestClient], tiny_pipeline: Pipeline,
        monkeypatch: pytest.MonkeyPatch) -> None:
    native = tiny_pipeline.resolution
    heavy = faces_memory(64, None, native, 64)
    mb = int(heavy * 1.5 / 2**20) + 1  # one heavy job fits, two do not
    c = make_client(max_request_memory_mb=mb, max_memory_mb=mb)
    started, release = threading.Event(), threading.Event()
    render = tiny_pipeline.render_and_label

    def slow(z: np.ndarray, with_features: bool = True) -> Any:
        if len(z) == 64:
            started.set()
            assert release.wait(30)
        return render(z, with_features=with_features)

    monkeypatch.setattr(tiny_pipeline, "render_and_label", slow)
    first: dict[str, Any] = {}
    t = threading.Thread(target=lambda: first.update(
        r=c.post("/generate", json={"seed": 1, "count": 64})))
    t.start()
    try:
        assert started.wait(30)
        batcher = c.app.state.batcher
        assert batcher.memory_held == pytest.approx(heavy)
        r = c.post("/generate", json={"seed": 100, "count": 64})
        assert r.status_code == 503, r.text
        assert "MiB of memory held" in r.json()["detail"]
        assert int(r.headers["Retry-After"]) >= 1
        # a light request still fits beside it
        assert c.post("/generate", json={"seed": 5, "count": 1}).status_code == 200
    finally:
        release.set()
        t.join(30)
    assert first["r"].status_code == 200
    assert batcher.memory_held == 0
    r = c.post("/generate", json={"seed": 100, "count": 64})
    assert r.status_code == 200, r.text


def test_batcher_memory_budget_unit(tiny_pipeline: Pipeline) -> None:
    b = Batcher(tiny_pipeline, max_memory_bytes=100).start()
    try:
        gate = threading.Event()
        first = b.submit_call(lambda p: gate.wait(30), cost=1, memory=80)
        with pytest.raises(QueueFull, match="MiB of memory held"):
            b.submit_call(lambda p: None, cost=1, memory=30)
        assert b.memory_held == 80
        light = b.submit_call(lambda p: None, cost=1, memory=20)  # 100: within
        gate.set()
        first.result(30)
        light.result(30)
        assert b.memory_held == 0
        b.submit_call(lambda p: None, cost=1, memory=30).result(30)
        # alone, a job is admitted whatever its estimate
        b.submit_call(lambda p: None, cost=1, memory=500).result(30)
        assert b.memory_held == 0
    finally:
        b.stop()


def test_the_budget_must_cover_one_request() -> None:
    with pytest.raises(ValueError, match="below max_request_memory_mb"):
        Settings(max_request_memory_mb=512, max_memory_mb=100)
    with pytest.raises(ConfigError, match=r"^max_memory_mb \(TLGAN_MAX_MEMORY_MB\): 100 is"):
        load_settings(max_memory_mb=100)
    assert Settings().max_memory_mb >= Settings().max_request_memory_mb
