"""Helpers shared by the web tests (imported as a plain module from tests/web)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings
from tlgan.photos.faces import FaceDetector
from tlgan.pipeline import Pipeline
from tlgan.testing import CentredFaceDetector

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def web_app(pipeline: Pipeline, face_detector: FaceDetector | None = None,
            **settings: Any) -> FastAPI:
    """``create_app`` on ``pipeline`` (TLGAN_* variables ignored), with the page included
    (until create_app includes it itself). Uploads are framed as aligned crops by a fake face
    detector (the page's tests upload noise), unless ``face_detector`` is another."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("TLGAN_"):
                mp.delenv(key)
        app = create_app(Settings(**settings), pipeline=pipeline,
                         face_detector=face_detector or CentredFaceDetector())
    if not any(getattr(r, "path", None) == "/" for r in app.routes):
        from api.web.router import router

        app.include_router(router)
    return app


