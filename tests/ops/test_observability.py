"""Metrics (/metrics), request ids, structured access logs, draining (in-process apps)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.middleware import AccessLogFormatter, RequestRecord
from api.settings import Settings, load_settings
from tlgan.pipeline import Pipeline

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def make(tiny_pipeline: Pipeline) -> Iterator[Any]:
    clients: list[TestClient] = []

    def build(**settings: Any) -> TestClient:
        client = TestClient(create_app(Settings(**settings), pipeline=tiny_pipeline))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for c in clients:
        c.__exit__(None, None, None)


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = float(s.value)
    return out


def value(snap: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return snap.get((name, frozenset(labels.items())), 0.0)


def test_fastapis_own_routes_are_labelled_by_their_path(make: Any) -> None:
    c = make()
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert c.get(path).status_code == 200
    snap = samples(c)
    count = "tlgan_request_duration_seconds_count"
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert value(snap, count, method="GET", route=path, status="2xx") == 1, path
    assert value(snap, count, method="GET", route="<unmatched>", status="2xx") == 0


def test_metrics_by_route_template_batches_errors_and_state(make: Any,
                                                            tiny_pipeline: Pipeline) -> None:
    c = make()
    assert c.post("/generate", json={"seed": 1, "count": 3}).status_code == 200
    z = np.zeros(16).tolist()
    # a plain render (no per-face hold of the references: that is a closed-loop job, not one
    # batched forward pass)
    assert c.post("/edit", json={"latent": z, "moves": {"Smiling": 1.0},
                                 "with_features": False,
                                 "hold_references": False}).status_code == 200
    assert c.post("/edit", json={"latent": [0.0]}).status_code == 422
    assert c.get("/no/such/path").status_code == 404
    big = c.post("/edit", content=b"x" * 2_000_000, headers={"Content-Type": "application/json"})
    assert big.status_code == 413
    snap = samples(c)
    count = "tlgan_request_duration_seconds_count"
    assert value(snap, count, method="POST", route="/generate", status="2xx") == 1
    assert value(snap, count, method="POST", route="/edit", status="2xx") == 1
    assert value(snap, count, method="POST", route="/edit", status="4xx") == 2
    assert value(snap, count, method="GET", route="<unmatched>", status="4xx") == 1
    assert value(snap, "tlgan_errors_total", route="/edit", status="422") == 1
    assert value(snap, "tlgan_errors_total", route="/edit", status="413") == 1
    assert value(snap, "tlgan_errors_total", route="<unmatched>", status="404") == 1
    assert not any(k[0] == count and ("route", "/no/such/path") in k[1] for k in snap)
    assert value(snap, "tlgan_batch_size_count") == 2
    assert value(snap, "tlgan_batch_size_sum") == 4
    assert value(snap, "tlgan_batch_size_bucket", le="4.0") == 2
    assert value(snap, "tlgan_faces_rendered_total") == 4
    assert value(snap, "tlgan_queue_depth") == 0
    assert value(snap, "tlgan_queue_capacity") == 256
    assert value(snap, "tlgan_queue_rejected_total") == 0
    assert value(snap, "tlgan_queue_backlog_seconds", lane="interactive") == 0
    assert value(snap, "tlgan_queue_backlog_seconds", lane="bulk") == 0
    assert value(snap, "tlgan_jobs_cancelled_total") == 0
    assert value(snap, "tlgan_jobs_stopped_total") == 0
    assert value(snap, "tlgan_jobs_expired_total") == 0
    for name, labels in (("tlgan_queue_backlog_seconds", {("lane", "bulk")}),
                         ("tlgan_jobs_cancelled_total", set()),
                         ("tlgan_jobs_stopped_total", set()),
                         ("tlgan_jobs_expired_total", set())):
        assert (name, frozenset(labels)) in snap, name  # present, not just absent = 0
    assert value(snap, "tlgan_ready") == 1
    assert value(snap, "tlgan_requests_in_flight") == 1  # this scrape
    assert value(snap, "tlgan_model_info", generator="tiny-dcgan", generator_sha256="0" * 64,
                 extractor="tiny-extractor", bundle=str(tiny_pipeline.bundle_id),
                 device="cpu") == 1


def test_metrics_is_public_off_the_schema_and_can_be_switched_off(make: Any) -> None:
    keyed = make(api_key="s3cret")
    assert keyed.get("/axes").status_code == 401
    assert keyed.get("/metrics").status_code == 200  # scrapers send no headers
    assert "/metrics" not in keyed.get("/openapi.json",
                                       headers={"X-API-Key": "s3cret"}).json()["paths"]
    om = keyed.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.rstrip().endswith("# EOF")
    off = make(metrics=False)
    assert off.get("/metrics").status_code == 404
    assert off.post("/generate", json={"seed": 1}).status_code == 200


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLGAN_METRICS", "false")
    monkeypatch.setenv("TLGAN_ACCESS_LOG", "0")
    monkeypatch.setenv("TLGAN_GRACEFUL_TIMEOUT", "7")
    s = load_settings()
    assert (s.metrics, s.access_log, s.graceful_timeout) == (False, False, 7)


def test_request_ids(make: Any) -> None:
    c = make()
    r = c.get("/healthz", headers={"X-Request-ID": "lb-42.a_b-C"})
    assert r.headers["x-request-id"] == "lb-42.a_b-C"
    for bad in ("x" * 129, "has space", "semi;colon", ""):
        got = c.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert HEX32.fullmatch(got), (bad, got)
    ids = {c.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3 and all(HEX32.fullmatch(i) for i in ids)
    # errors carry it too (header; the error body keeps its one shape)
    err = c.post("/edit", json={"latent": [0.0]}, headers={"X-Request-ID": "req-1"})
    assert err.status_code == 422 and err.headers["x-request-id"] == "req-1"
    assert set(err.json()) == {"detail", "errors"}
    assert c.get("/nope", headers={"X-Request-ID": "req-2"}).headers["x-request-id"] == "req-2"


def test_access_log_is_one_json_line_per_request(make: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    c = make()
    with caplog.at_level(logging.INFO, logger="tlgan.access"):
        c.post("/generate", json={"seed": 1, "with_features": False},
               headers={"X-Request-ID": "abc"})
        c.post("/edit", json={"latent": [0.0]})
    records = [r for r in caplog.records if r.name == "tlgan.access"]
    assert len(records) == 2
    lines = [json.loads(AccessLogFormatter().format(r)) for r in records]
    first, second = lines
    assert set(first) == {"ts", "level", "logger", "request_id", "method", "route", "path",
                          "status", "duration_ms", "client"}
    assert first["request_id"] == "abc" and first["route"] == "/generate"
    assert first["status"] == 200 and first["method"] == "POST" and first["level"] == "info"
    assert first["ts"].endswith("Z") and first["duration_ms"] > 0
    assert second["status"] == 422 and HEX32.fullmatch(second["request_id"])
    # other records keep a JSON shape too
    other = logging.LogRecord("tlgan.api", logging.WARNING, __file__, 1, "hello %s", ("x",),
                              None)
    assert json.loads(AccessLogFormatter().format(other))["message"] == "hello x"


def test_access_log_can_be_switched_off(make: Any, caplog: pytest.LogCaptureFixture) -> None:
    c = make(access_log=False)
    with caplog.at_level(logging.INFO, logger="tlgan.access"):
        c.get("/healthz")
    assert not [r for r in caplog.records if r.name == "tlgan.access"]


def test_unhandled_error_is_counted_logged_and_carries_the_id(
        tiny_pipeline: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(), pipeline=tiny_pipeline)

    def boom() -> None:
        raise RuntimeError("bug")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c, \
            caplog.at_level(logging.INFO, logger="tlgan.access"):
        r = c.get("/boom", headers={"X-Request-ID": "bug-1"})
        assert r.status_code == 500 and r.headers["x-request-id"] == "bug-1"
        assert r.json() == {"detail": "internal server error", "errors": None}
        snap = samples(c)
    assert value(snap, "tlgan_errors_total", route="/boom", status="500") == 1
    access = [r for r in caplog.records if r.name == "tlgan.access"
              and isinstance(getattr(r, "tlgan_access", None), RequestRecord)
              and r.tlgan_access.route == "/boom"]  # type: ignore[attr-defined]
    assert access and access[0].levelno == logging.ERROR
    assert app.state.server_errors == 1


def test_draining_turns_readyz_503_and_new_work_away(make: Any) -> None:
    c = make()
    app: FastAPI = c.app
    assert c.get("/readyz").status_code == 200
    app.state.draining = True
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json() == {"status": "draining"}
    assert c.get("/healthz").status_code == 200
    late = c.post("/generate", json={"seed": 1})  # new work: another replica, please
    assert late.status_code == 503 and late.headers["retry-after"] == "1"
    assert late.headers["connection"] == "close" and "shutting down" in late.json()["detail"]
    assert value(samples(c), "tlgan_ready") == 0
    assert app.state.work.count == 0  # nothing in flight: the drain may end


def test_lifespan_exit_finishes_queued_jobs(tiny_pipeline: Pipeline,
                                            caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(), pipeline=tiny_pipeline)
    with caplog.at_level(logging.INFO, logger="tlgan.api"):
        with TestClient(app):
            batcher = app.state.batcher
            futures = [batcher.submit(np.full((4, 16), i, np.float32), False)
                       for i in range(40)]
        assert not batcher.running
    assert all(f.done() and f.exception() is None for f in futures)
    assert [f.result()[0].shape for f in futures] == [(4, 64, 64, 3)] * 40
    assert any("shutdown complete: batcher drained (40 jobs, 160 faces" in r.getMessage()
               for r in caplog.records)
