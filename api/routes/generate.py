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
from tlgan.critic import REFINE_STEPS
from tlgan.latents import latent_to_list
from tlgan.pipeline import ConditionResult, Pipeline, condition_cost
from tlgan.pipeline.ranking import RANKED, REFINED, SeededLatents, resolve_quality

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

    A null seed picks a random one (returned). ``quality`` ``raw`` (the default unless the
    service's ``quality`` setting says otherwise) returns each seed's own face; ``ranked``
    (a realism critic must be loaded) returns, per seed, the face the critic finds most
    realistic among ``candidates`` latents derived from the seed (the seed's own first), and
    says which (``candidate``) and its score (``realism``); ``refined`` (a critic and the
    bundle) moves each seed's own latent a bounded way up the critic's score, orthogonal to
    the bundle's axes, and says its score (``realism``).
    With ``features``, each face starts from the one of 16 candidate latents derived from
    its seed that is nearest the targets (ranked: among the critic's better half of them),
    is moved along the axes until the extractor's probabilities are within 0.2 of the
    targets, and lists the attributes it could not reach in ``unmet``. The same request
    always gives the same bytes.
    """
    pipeline, settings = jobs.pipeline, jobs.settings
    quality = resolve_quality(body.quality or settings.quality, pipeline.critic,
                              pipeline.generator.name)
    if body.candidates is not None and (quality != RANKED or body.features):
        raise ValueError("candidates: only 'ranked' sampling without `features` takes a "
                         f"number of candidates (this request is {quality}"
                         f"{' with features' if body.features else ''})")
    k = body.candidates or settings.candidates
    jobs.memory = check_limits(settings, body.size, body.count, body.format,
                               pipeline.resolution)
    kind = negotiate(request.headers.get("accept"), body.format, allow_image=body.count == 1)
    seed = body.seed if body.seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)
    seeds = list(range(seed, seed + body.count))
    z = pipeline.seeds_to_latents(seeds, body.truncation)
    own = await with_custom_axes(jobs, body.custom_axes)
    unmet: list[list[str]] | None = None
    chosen: np.ndarray | None = None
    realism: np.ndarray | None = None
    probs: np.ndarray | None
    if body.features:
        targets = dict(body.features)

        def condition(p: Pipeline, stop: Callable[[], bool]) -> ConditionResult:
            return own.generate_conditioned(seeds, targets, body.truncation,
                                            should_stop=stop, quality=quality)

        result = await jobs.call(condition, cost=condition_cost(len(seeds)))
        z, images, probs, unmet = result.latents, result.images, result.probs, result.unmet
        chosen, realism = result.chosen, result.realism
    else:  # no targets, or none to meet ({}): the plain render, as cheap as no features
        if quality in (RANKED, REFINED):
            def rank(p: Pipeline, stop: Callable[[], bool]) -> SeededLatents:
                return own.seeded_latents(seeds, body.truncation, quality, k)

            cost = len(seeds) * (k if quality == RANKED else 3 * (1 + REFINE_STEPS))
            picked = await jobs.call(rank, cost=cost)
            z, chosen, realism = picked.latents, picked.chosen, picked.realism
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
                      unmet=None if unmet is None else unmet[i],
                      candidate=None if chosen is None else int(chosen[i]),
                      realism=None if realism is None else round(float(realism[i]), 4))
        for i, s in enumerate(seeds)
    ]
    return GenerateResponse(faces=faces, generator=pipeline.generator.name,
                            bundle=pipeline.bundle_id)
