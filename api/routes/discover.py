"""GET /axes/discover: directions found without labels, as candidates to name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import JobsDep
from api.memory import check_memory, limit_bytes
from api.routes.responses import COMMON_ERRORS
from api.schemas import MAX_DISCOVER, DiscoverMethod, DiscoverResponse, ErrorResponse
from tlgan.axis_work.discovery import Discovered, cached, discover_cached, discover_cost, pca_memory
from tlgan.pipeline import Pipeline

router = APIRouter(tags=["models"])


@router.get("/axes/discover", response_model=DiscoverResponse,
            responses={**COMMON_ERRORS, 422: {
                "model": ErrorResponse,
                "description": "Invalid k or method (the message names it)."}})
async def discover(jobs: JobsDep,
                   k: Annotated[int, Query(ge=1, le=MAX_DISCOVER,
                                           description="Number of directions.")] = 10,
                   method: Annotated[DiscoverMethod, Query(
                       description="sefa: closed form from the generator's first layer "
                                   "(default); pca: principal components of an "
                                   "intermediate activation (GANSpace).")] = "sefa",
                   ) -> DiscoverResponse:
    """The top ``k`` directions of the generator's latent space found without labels.

    Each comes with the attributes it moves most (mean change of the extractor's
    probability when 32 seeded faces move from -3 to +3 along it) and the nearest named
    axis of the bundle, so a user can name one and save it as an axis. Deterministic:
    computed once per method (the first request may take seconds), then served from memory.
    """
    found = cached(jobs.pipeline, method, k)
    if found is None:
        limit = limit_bytes(jobs.settings)
        if method == "pca":  # the activations of PCA_SAMPLES faces and their Gram matrix
            jobs.memory = check_memory(jobs.settings, pca_memory(jobs.pipeline), "method",
                                       "method pca on this generator")

        def work(p: Pipeline, stop: Callable[[], bool]) -> Discovered:
            return discover_cached(p, method, k, should_stop=stop, max_bytes=limit)

        found = await jobs.call(work, cost=discover_cost(k, method=method))
    return DiscoverResponse.model_validate({"method": method, "directions": found.rows()})
