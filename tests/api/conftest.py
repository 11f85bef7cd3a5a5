"""Fixtures for the API tests: apps on the tiny seeded pipeline, TestClients, helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tlgan.photos.faces import FaceDetector
from tlgan.pipeline import Pipeline
from tlgan.testing import CentredFaceDetector


@pytest.fixture
def make_client(tiny_pipeline: Pipeline) -> Iterator[Callable[..., TestClient]]:
    """Build started TestClients; on teardown assert no request reached the catch-all 500."""
    clients: list[TestClient] = []

    def make(pipeline: Pipeline | None = None, face_detector: FaceDetector | None = None,
             **settings: Any) -> TestClient:
        # /encode's faces: a fake that frames every photo as an aligned crop, unless given
        app = create_app(Settings(**settings), pipeline=pipeline or tiny_pipeline,
                         face_detector=face_detector or CentredFaceDetector())
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    try:
        for c in clients:
            assert c.app.state.server_errors == 0, "a request reached the catch-all 500 handler"
    finally:
        for c in clients:
            c.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    """A started TestClient on the tiny pipeline with default settings."""
    return make_client()
