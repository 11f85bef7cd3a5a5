"""FastAPI dependencies, as ``Annotated`` aliases the routes declare.

The app keeps its state on ``app.state`` (an :class:`api.state.AppState`); these
functions hand it to the routes, answering 503 while the models are not loaded. Tests swap
any of them with ``app.dependency_overrides[get_pipeline] = ...``.

They are ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in its thread pool,
and five thread hops per request cost more than the request's own work (they only read
``app.state``, so they never block the event loop). The face routes take one dependency,
``JobsDep``, that also carries the pipeline and settings: FastAPI spends about 50 us per
dependency per request, a tenth of the HTTP overhead of ``/edit``.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from api.batching import Batcher
from api.errors import RETRY_AFTER_S
from api.jobs import RequestJobs
from api.settings import Settings
from api.state import AppState, app_state, state_of
from tlgan.pipeline import Pipeline
from tlgan_base.domain_errors import shown

API_KEY_HEADER = "X-API-Key"
_api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                               description="The service's API key (when one is configured).")


StateDep = Annotated[AppState, Depends(app_state)]


def _not_ready() -> HTTPException:
    return HTTPException(503, "unavailable: the models are still loading (GET /readyz "
                         "answers 200 once they are ready)",
                         headers={"Retry-After": str(RETRY_AFTER_S)})


async def get_settings(state: StateDep) -> Settings:
    """The app's settings."""
    return state.settings


async def get_pipeline(state: StateDep) -> Pipeline:
    """The loaded pipeline (503 until the lifespan has loaded it)."""
    if state.pipeline is None or not state.ready:
        raise _not_ready()
    return state.pipeline


async def get_batcher(state: StateDep) -> Batcher:
    """The running batcher (503 until started / after shutdown)."""
    if state.batcher is None or not state.ready:
        raise _not_ready()
    return state.batcher


async def get_jobs(request: Request, pipeline: Annotated[Pipeline, Depends(get_pipeline)]
                   ) -> RequestJobs:
    """Model work for this request: cancelled if the client leaves, bounded queue wait; also
    the request's pipeline (:func:`get_pipeline`, so overrides apply) and the settings.

    503 until the batcher runs (as :func:`get_batcher`, checked here rather than as a
    sub-dependency: one dependency fewer per request)."""
    state = state_of(request.app)
    batcher = state.batcher
    if batcher is None or not state.ready:
        raise _not_ready()
    settings = state.settings
    return RequestJobs(batcher, request.receive, settings.max_queue_wait, pipeline=pipeline,
                       settings=settings, encode_slots=state.encode_slots,
                       loop_turns=getattr(request.state, "loop_turns", None))


async def require_json(request: Request) -> None:
    """415 unless the request body is declared as JSON (``application/json`` or ``+json``)."""
    ctype = request.headers.get("content-type")
    if ctype is None:
        if request.headers.get("content-length", "0").strip() in ("", "0"):
            return  # no body: FastAPI reports the missing body as 422
        raise HTTPException(415, "Content-Type: missing; expected application/json")
    media = ctype.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/")
                                       and media.endswith("+json")):
        return
    raise HTTPException(415, f"Content-Type: expected application/json, got {shown(media)}")


async def require_api_key(request: Request,
                    key: Annotated[str | None, Security(_api_key_scheme)] = None) -> None:
    """401 unless the ``X-API-Key`` header matches the configured key (if any)."""
    expected = state_of(request.app).settings.api_key
    if expected is None:
        return
    if key is None or not secrets.compare_digest(key.encode(),
                                                 expected.get_secret_value().encode()):
        raise HTTPException(401, f"{API_KEY_HEADER}: missing or invalid API key",
                            headers={"WWW-Authenticate": API_KEY_HEADER})


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
BatcherDep = Annotated[Batcher, Depends(get_batcher)]
JobsDep = Annotated[RequestJobs, Depends(get_jobs)]
JsonBody = Depends(require_json)
ApiKey = Depends(require_api_key)
