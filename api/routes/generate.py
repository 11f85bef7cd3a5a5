"""POST /generate: seeded faces, optionally conditioned on target feature probabilities."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np
from fastapi import APIRouter, Request, Response

from api.deps import JobsDep, JsonBody
from api.media import JSON, encode_b64, negotiate
from api.routes.custom_axes import render_faces, with_custom_axes
from api.routes.limits import check_limits
from api.routes.replies import features_of, image_response
from api.routes.responses import BODY_ERRORS, image_200
from api.schemas import GeneratedFace, GenerateRequest, GenerateResponse
from tlgan.latents import latent_to_list
from tlgan.pipeline import ConditionResult, Pipeline, condition_cost

#: random seeds stay below 2**53 so that JavaScript clients can hold them exactly
RANDOM_SEED_BOUND = 2**53 - 64

router = APIRouter(tags=["faces"])


@router.post(
    "/generate", response_model=GenerateResponse, dependencies=[JsonBody],
    responses={**BODY_ERRORS, **image_200("The faces (JSON), or with `Accept: image/*` and "
                                          "count 1 the image bytes.", seed=True)},
)
async def generate(body: GenerateRequest, request: Request, jobs: JobsDep
                   ) -> Response | GenerateResponse:
    """Render ``count`` faces from seeds ``seed .. seed + count - 1``.

    A null seed picks a random one (returned). With ``features``, each face starts from the
    one of 16 candidate latents derived from its seed (the seed's own first) that is nearest
    the targets, is moved along the axes until the extractor's probabilities are within 0.2
    of the targets, and lists the attributes it could not reach in ``unmet``. The same
    request always gives the same bytes.
    """
    pipeline, settings = jobs.pipeline, jobs.settings
    jobs.memory = check_limits(settings, body.size, body.count, body.format,
                               pipeline.resolution)
    kind = negotiate(request.headers.get("accept"), body.format, allow_image=body.count == 1)
    seed = body.seed if body.seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)
    seeds = list(range(seed, seed + body.count))
    z = pipeline.seeds_to_latents(seeds, body.truncation)
    own = await with_custom_axes(jobs, body.custom_axes)
    unmet: list[list[str]] | None = None
    probs: np.ndarray | None
    if body.features:
        targets = dict(body.features)

        def condition(p: Pipeline, stop: Callable[[], bool]) -> ConditionResult:
            return own.generate_conditioned(seeds, targets, body.truncation,
                                            should_stop=stop)

        result = await jobs.call(condition, cost=condition_cost(len(seeds)))
        z, images, probs, unmet = result.latents, result.images, result.probs, result.unmet
    else:  # no targets, or none to meet ({}): the plain render, as cheap as no features
        images, probs = await render_faces(jobs, own, z, body.with_features)
        if body.features is not None:
            unmet = [[] for _ in seeds]
    if not body.with_features:
        probs = None
    images = await jobs.display(images, body.size)
    if kind != JSON:
        return await image_response(jobs, images[0], kind, body.size, z[0],
                                    features_of(own.attributes, probs, 0), seed=seed)
    encoded = await jobs.encode(images, body.size, encode_b64, images, body.format, body.size)
    faces = [
        GeneratedFace(seed=s, latent=latent_to_list(z[i]), image=encoded[i],
                      features=features_of(own.attributes, probs, i),
                      unmet=None if unmet is None else unmet[i])
        for i, s in enumerate(seeds)
    ]
    return GenerateResponse(faces=faces, generator=pipeline.generator.name,
                            bundle=pipeline.bundle_id)
