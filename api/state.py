"""The application's state, typed: what the app holds between requests.

One :class:`AppState` is held on ``app.state`` (it is Starlette's ``State``, so
``app.state.ready`` and the like keep working); code reads it through :func:`app_state`,
typed, instead of reading untyped attributes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI, Request
from starlette.datastructures import State

from api.batching import Batcher, BatchInfo
from api.middleware import WorkCounter
from api.settings import Settings
from tlgan.photos.faces import FaceDetector
from tlgan.pipeline import Pipeline

__all__ = ["AppState", "app_state", "state_of"]


class AppState(State):
    """What the app holds: its settings, the pipeline (None until loaded), the face finder
    for uploads, the batcher (None until the lifespan starts it), the slots big image
    encodes take, readiness, the drain flag (set on SIGTERM: ``/readyz`` answers 503), the
    requests in flight (the drain waits for them), the count of 500s, a hook called per
    batch (:class:`api.batching.BatchInfo`) and the lock model reloads take."""

    settings: Settings
    pipeline: Pipeline | None
    face_detector: FaceDetector
    batcher: Batcher | None
    encode_slots: asyncio.Semaphore | None
    ready: bool
    draining: bool
    work: WorkCounter
    server_errors: int
    on_batch: Callable[[BatchInfo], None] | None
    reload_lock: asyncio.Lock | None

    def __init__(self, settings: Settings, pipeline: Pipeline | None,
                 face_detector: FaceDetector) -> None:
        super().__init__()
        self.settings = settings
        self.pipeline = pipeline
        self.face_detector = face_detector
        self.batcher = None
        self.encode_slots = None
        self.ready = False
        self.draining = False
        self.work = WorkCounter()
        self.server_errors = 0
        self.on_batch = None
        self.reload_lock = None


def state_of(app: FastAPI) -> AppState:
    """The app's :class:`AppState` (set by :func:`api.app.create_app`)."""
    state = app.state
    if not isinstance(state, AppState):
        raise TypeError("app.state: not an AppState (build the app with api.app.create_app)")
    return state


async def app_state(request: Request) -> AppState:
    """The state of the app serving ``request`` (a dependency: ``StateDep``)."""
    return state_of(request.app)
