"""GET /axes/discover on the tiny pipeline."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.batching import Batcher, JobFuture, JobStopped
from tlgan.axis_work.discovery import discover_cached, discover_cost
from tlgan.pipeline import Pipeline


def test_discover_contract(client: TestClient, tiny_pipeline: Pipeline) -> None:
    r = client.get("/axes/discover", params={"k": 3})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["method"] == "sefa" and [d["index"] for d in doc["directions"]] == [0, 1, 2]
    first = doc["directions"][0]
    assert set(first) == {"index", "direction", "score", "moves", "nearest_axis"}
    assert len(first["direction"]) == tiny_pipeline.latent_size
    assert np.linalg.norm(first["direction"]) == pytest.approx(1.0, abs=1e-5)
    assert set(first["moves"]) <= set(tiny_pipeline.attributes)
    assert first["nearest_axis"]["name"] in tiny_pipeline.axis_names
    # deterministic and cached: fewer directions are the first ones of the larger answer
    again = client.get("/axes/discover", params={"k": 2}).json()
    assert again["directions"] == doc["directions"][:2]


@pytest.mark.slow
def test_discover_pca(client: TestClient) -> None:
    r = client.get("/axes/discover", params={"k": 2, "method": "pca"})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "pca" and len(r.json()["directions"]) == 2


@pytest.mark.parametrize(("params", "field"), [({"k": 0}, "k"), ({"k": 21}, "k"),
                                               ({"k": "x"}, "k"), ({"method": "ica"}, "method")])
def test_discover_bad_query(client: TestClient, params: dict[str, object], field: str) -> None:
    r = client.get("/axes/discover", params=params)
    assert r.status_code == 422
    assert field in r.json()["detail"]


def test_an_abandoned_pca_discovery_stops_within_a_chunk(tiny_pipeline: Pipeline) -> None:
    """The route's job, abandoned while it computes activations, stops after the chunk of
    forward passes it is in (issue #24: it ran on through the SVD, holding the bulk lane)."""
    pipe = Pipeline(tiny_pipeline.generator, tiny_pipeline.extractor, tiny_pipeline.bundle)
    b = Batcher(pipe, window_ms=0).start()
    futures: list[JobFuture] = []
    submitted = threading.Event()
    forwards: list[int] = []

    def count_and_leave(_m: object, _i: object) -> None:
        forwards.append(1)
        if len(forwards) == 2:  # the client leaves during the second chunk
            assert submitted.wait(10)
            futures[0].abandon()

    handle = pipe.generator.module.register_forward_pre_hook(count_and_leave)
    try:
        futures.append(b.submit_call(
            lambda p, stop: discover_cached(p, "pca", 2, should_stop=stop),
            cost=discover_cost(2, method="pca"), stoppable=True))
        submitted.set()
        with pytest.raises(JobStopped):
            futures[0].result(timeout=60)
    finally:
        handle.remove()
        b.stop()
    assert len(forwards) == 2  # of 8 chunks, and none of the renders measuring moves
    assert b.stats()["stopped"] == 1
    assert "pca" not in pipe.__dict__.get("_discovered", {})
