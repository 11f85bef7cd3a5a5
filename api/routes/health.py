"""Liveness, readiness and batcher statistics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.routes.responses import COMMON_ERRORS
from api.schemas import HealthResponse, ReadyResponse, StatsResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """Liveness: 200 while the process serves HTTP (models loaded or not)."""
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=ReadyResponse,
            responses={503: {"model": ReadyResponse, "description": "Models not loaded (yet)."}})
async def readyz(state: StateDep) -> ReadyResponse | JSONResponse:
    """Readiness: 200 once the models are loaded and the batcher runs, else 503."""
    pipeline = state.pipeline
    if pipeline is None or not state.ready:
        return JSONResponse(ReadyResponse(status="loading").model_dump(), status_code=503)
    return ReadyResponse(status="ready", generator=pipeline.generator.name,
                         extractor=getattr(pipeline.extractor, "name", None),
                         bundle=pipeline.bundle_id)


stats_router = APIRouter(tags=["health"])


@stats_router.get("/stats", response_model=StatsResponse, responses=COMMON_ERRORS)
async def stats(state: StateDep) -> StatsResponse:
    """Queue depth, batch counts and the batch-size histogram (for monitoring)."""
    batcher = state.batcher
    snap = batcher.stats() if batcher is not None else {}
    snap["batch_sizes"] = {str(k): v for k, v in snap.get("batch_sizes", {}).items()}
    return StatsResponse(ready=state.ready, batcher=snap, server_errors=state.server_errors)
