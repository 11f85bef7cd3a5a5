"""Helpers shared by the web tests (imported as a plain module from tests/web)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings
from tlgan.pipeline import Pipeline

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def web_app(pipeline: Pipeline, **settings: Any) -> FastAPI:
    """``create_app`` on ``pipeline`` (TLGAN_* variables ignored), with the page included
    (until create_app includes it itself)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("TLGAN_"):
                mp.delenv(key)
        app = create_app(Settings(**settings), pipeline=pipeline)
    if not any(getattr(r, "path", None) == "/" for r in app.routes):
        from api.web.router import router

        app.include_router(router)
    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port (in a thread); yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    assert app.state.server_errors == 0, "a request reached the catch-all 500 handler"
