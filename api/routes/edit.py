"""POST /edit: move a latent along feature axes (with locks) and render it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import BatcherDep, JsonBody, PipelineDep, SettingsDep
from api.media import JSON, encode_b64, negotiate, off_loop
from api.routes.common import (
    BODY_ERRORS,
    check_limits,
    features_of,
    image_200,
    image_response,
    latent,
)
from api.schemas import EditRequest, EditResponse
from tlgan.latents import latent_to_list

router = APIRouter(tags=["faces"])


@router.post(
    "/edit", response_model=EditResponse, dependencies=[JsonBody],
    responses={**BODY_ERRORS, **image_200("The moved face (JSON), or with `Accept: image/*` "
                                          "the image bytes.", seed=False)},
)
async def edit(body: EditRequest, request: Request, pipeline: PipelineDep,
               batcher: BatcherDep, settings: SettingsDep) -> Response | EditResponse:
    """Add ``moves`` (distances along unit axes in z) to ``latent`` and render the result.

    Locked axes are projected out of the summed move, so the latent's component along
    each locked axis does not change. ``with_features: false`` skips labelling (fastest);
    ``features`` is then null.
    """
    check_limits(settings, body.size)
    kind = negotiate(request.headers.get("accept"), body.format)
    z = latent(body.latent, pipeline, "latent")
    if body.locked and pipeline.bundle is None:
        raise ValueError("locked: this service has no axis bundle loaded")
    for name in body.locked:
        pipeline.axis_index(name, "locked")
    moved = pipeline.edit(z, body.moves, body.locked)
    images, probs = await batcher.render(moved[None, :], body.with_features)
    features = features_of(pipeline, probs, 0)
    if kind != JSON:
        return await image_response(images[0], kind, body.size, moved, features)
    encoded = await off_loop(images, body.size, encode_b64, images, body.format, body.size)
    return EditResponse(latent=latent_to_list(moved), image=encoded[0], features=features)
