"""The FastAPI application factory.

``create_app(settings, pipeline=None)`` builds the app; nothing is loaded at import or in
the factory. The app's lifespan loads the models (unless a pipeline is given, as tests do
with ``tlgan.testing.tiny_pipeline()``), starts the batcher's worker thread and flips
``/readyz`` to 200; on shutdown it stops the batcher after finishing queued jobs.

Operations: every response carries ``X-Request-ID``; one JSON access-log line per request
goes to the ``tlgan.access`` logger (``TLGAN_ACCESS_LOG``); Prometheus metrics are served at
``GET /metrics`` (``TLGAN_METRICS``, public, see :mod:`api.metrics`). Setting
``app.state.draining = True`` (``tlgan serve`` does on SIGTERM) turns ``/readyz`` to 503
while in-flight requests finish.

Run it with ``tlgan serve`` or ``uvicorn --factory api.app:create_app``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from api import loading
from api.batching import Batcher
from api.deps import ApiKey
from api.docs import docs_router
from api.errors import install_error_handlers
from api.media import BIG_ENCODES
from api.metrics import Metrics
from api.middleware import (
    UNMATCHED,
    BodyLimitMiddleware,
    CatchAllMiddleware,
    LoopTurnMiddleware,
)
from api.openapi import install_openapi
from api.routes import axis_routes, discover, edit, encode, generate, health, interpolate, photo
from api.settings import Settings, load_settings
from api.state import AppState, state_of
from api.web.router import router as web_router
from tlgan.photos.faces import FaceDetector, HaarFaceDetector
from tlgan.pipeline import Pipeline

log = logging.getLogger("tlgan.api")

DESCRIPTION = """\
Latent-space control for face GANs: generate seeded faces, encode a face photo into a
latent, move faces along feature axes (with locks), interpolate between them, and read the
axes the service knows.

Errors are JSON `{"detail": "<field>: <message>", "errors": [...]}`. Images are base64 in
JSON, or raw bytes with `Accept: image/png|jpeg|webp` on /generate (count 1) and /edit,
with the latent in the `X-Latent` header (base64 of float32 little-endian).
"""


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None,
               face_detector: FaceDetector | None = None) -> FastAPI:
    """Build the app.

    Args:
        settings: the service's settings (default: read from ``TLGAN_*`` variables).
        pipeline: an already built pipeline (tests); None loads one in the lifespan from
            ``settings`` with :func:`api.loading.build_pipeline`.
        face_detector: finds the faces in uploaded photos (tests: a fake); None: the
            product's, :class:`tlgan.photos.faces.HaarFaceDetector`.
    """
    settings = settings if settings is not None else load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = state_of(app)
        warm = state.pipeline is None  # a pipeline given by the caller (tests) is not
        if state.pipeline is None:
            log.debug("loading models (generator=%s, extractor=%s, bundle=%s, device=%s)",
                     settings.generator or "default", settings.extractor or "default",
                     settings.bundle or "default", settings.device)
            state.pipeline = await run_in_threadpool(loading.build_pipeline, settings)
        loaded = state.pipeline
        batcher = Batcher(loaded, window_ms=settings.batch_window_ms,
                          max_batch=settings.max_batch, queue_size=settings.queue_size,
                          max_queue_seconds=settings.max_queue_seconds,
                          max_memory_bytes=settings.max_memory_mb * 2**20,
                          on_batch=state.on_batch)
        if metrics is not None:
            batcher.hooks.append(metrics.observe_batch)
        if warm:  # admission starts from measured figures, not a guess (api.batching)
            measured = await run_in_threadpool(batcher.warm_up, min(8, settings.max_batch))
            log.info("warm-up: %s", ", ".join(f"{lane} lane {s * 1000:.1f} ms per face"
                                               for lane, s in measured.items()))
        state.batcher = batcher.start()
        state.encode_slots = asyncio.Semaphore(BIG_ENCODES)  # bound to the serving loop
        state.draining = False
        state.ready = True
        log.info("ready: %s", loaded.summary())
        try:
            yield
        finally:
            state.ready = False
            await run_in_threadpool(batcher.stop)
            done = batcher.stats()
            log.info("shutdown complete: batcher drained (%d jobs, %d faces accepted; %d "
                     "done, %d cancelled by their clients or the queue wait)", done["jobs"],
                     done["faces"], done["done"], done["cancelled"])

    # FastAPI's own docs routes are always public: api.docs serves them per the settings.
    # No trailing-slash redirects: Starlette builds them from the client's Host header.
    app = FastAPI(title="tlgan", version=_version(), description=DESCRIPTION,
                  lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None,
                  redirect_slashes=False)
    app_state = app.state = AppState(
        settings, pipeline, face_detector if face_detector is not None else HaarFaceDetector())
    metrics = Metrics(app_state) if settings.metrics else None

    def count_error(exc: BaseException) -> None:
        app_state.server_errors += 1

    install_error_handlers(app)
    protected: list[Any] = [ApiKey] if settings.api_key is not None else []
    app.include_router(health.router)
    if metrics is not None:  # public (scrapers rarely send headers); TLGAN_METRICS=false: off
        app.add_api_route("/metrics", metrics.endpoint, methods=["GET"],
                          include_in_schema=False)
    app.include_router(web_router)  # the page is public; it asks for a key on 401
    app.include_router(docs_router(app, settings))  # protected unless public_docs
    app.include_router(health.stats_router, dependencies=protected)
    for module in (generate, edit, interpolate, encode, photo, discover, axis_routes):
        app.include_router(module.router, dependencies=protected)
    install_openapi(app)

    def route_of(scope: Scope) -> str:
        """Metrics label of a request without a FastAPI route in its scope (answered before
        routing, e.g. 413 from the body limit, or served by one of FastAPI's own routes such
        as /openapi.json, /docs and /redoc): its path if that is one of the app's
        (parameter-free) paths, else UNMATCHED, so that labels stay bounded whatever
        clients send."""
        path = str(scope.get("path", ""))
        known = set(app.openapi().get("paths", {}))
        known.update(p for r in app.routes if isinstance(p := getattr(r, "path", None), str))
        return path if path in known else UNMATCHED

    # Outermost last: CORS -> request id / catch-all 500 / access log / metrics -> body
    # limit -> turns on the event loop -> FastAPI's own stack.
    app.add_middleware(LoopTurnMiddleware, per_turn=settings.loop_turn_requests)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       per_path={"/encode": (settings.max_upload_bytes, "image"),
                                 "/photo/edit": (settings.max_upload_bytes, "image")})
    app.add_middleware(
        CatchAllMiddleware, on_error=count_error,
        on_start=[metrics.request_started] if metrics is not None else [],
        on_request=[metrics.observe_request] if metrics is not None else [],
        access_log=settings.access_log, route_of=route_of,
        draining=lambda: app_state.draining, work=app_state.work)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Accept", "X-Request-ID"],
            expose_headers=["X-Latent", "X-Seed", "X-Features", "X-Features-Omitted",
                            "X-Realism", "Retry-After", "X-Request-ID"],
        )
    return app


def _version() -> str:
    try:
        return version("tlgan")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"
