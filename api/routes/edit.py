"""POST /edit: move a latent along feature axes (with locks) and render it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from fastapi import APIRouter, Request, Response

from api.deps import JobsDep, JsonBody
from api.media import JSON, encode_b64, json_response, negotiate
from api.routes.common import (
    BODY_ERRORS,
    check_in_range,
    check_limits,
    features_of,
    image_200,
    image_response,
    latent,
    render_faces,
    with_custom_axes,
)
from api.schemas import EditRequest, EditResponse
from tlgan.latents import latent_to_list
from tlgan.pipeline import HoldResult, Pipeline, hold_cost

router = APIRouter(tags=["faces"])


@router.post(
    "/edit", response_model=EditResponse, dependencies=[JsonBody],
    responses={**BODY_ERRORS, **image_200("The moved face (JSON), or with `Accept: image/*` "
                                          "the image bytes.", seed=False)},
)
async def edit(body: EditRequest, request: Request, jobs: JobsDep) -> Response:
    """Add ``moves`` (distances along unit axes in z) to ``latent`` and render the result.

    Locked axes are projected out of the summed move (the latent's component along each
    locked axis does not change). That holds a locked attribute only on average, so when an
    extractor is loaded each locked attribute is also held *per face*: the face is labelled
    before and after, and corrected along the locked axes until each locked attribute's
    probability is within 0.05 of its value before the move (at most 4 passes);
    ``unheld`` lists the locks that could not be held (null when no lock was held
    closed-loop). ``with_features: false`` skips returning labels (``features`` is then
    null). A move that would take a component of the latent out of [-1000, 1000] (the range
    requests may use) is refused with 422 naming ``moves``.

    ``locality`` (default: on when the bundle ships masks) keeps each moved axis's change
    inside the region its attribute lives in (see the field); with locks, the locks are held
    on the moved latent and ``unheld`` is judged on the local face returned.

    ``hold_references`` (default: on when an extractor is loaded) also holds, per face, the
    reference attributes (gender, age) the edit does not move, with corrections orthogonal
    to the moved axes; the moved attributes keep what the open-loop move gave them.
    """
    pipeline = jobs.pipeline
    jobs.memory = check_limits(jobs.settings, body.size, 1, body.format, pipeline.resolution)
    kind = negotiate(request.headers.get("accept"), body.format)
    z = latent(body.latent, pipeline, "latent")
    own = await with_custom_axes(jobs, body.custom_axes)
    if body.locked and pipeline.bundle is None and own is pipeline:
        raise ValueError("locked: this service has no axis bundle loaded")
    for name in body.locked:
        own.axis_index(name, "locked")
    moved = own.edit(z, body.moves, body.locked)
    local = (own.resolve_locality(body.locality)
             and own.locality_mask(body.moves) is not None)
    check_in_range(moved, "moves", "the moved latent", "move less far")
    unheld: list[str] | None = None
    probs: np.ndarray | None
    hold_refs = (own.resolve_hold_references(body.hold_references)
                 and any(d != 0 for d in body.moves.values())
                 and bool(own.held_references(body.moves, body.locked)))
    if hold_refs:
        start = z[None, :]

        def hold_edit(p: Pipeline, stop: Callable[[], bool]) -> HoldResult:
            return own.hold_edit(start, moved[None, :], body.moves, body.locked,
                                 locality=local, should_stop=stop)

        result = await jobs.call(hold_edit, cost=hold_cost(1))
        moved, images, probs, unheld = (result.latents[0], result.images, result.probs,
                                        result.unheld[0])
        check_in_range(moved, "moves", "the moved latent, with its references held,",
                       "move less far")
        if not body.with_features:
            probs = None
    elif body.moves and own.held_locks(body.locked):
        start = z[None, :]

        def hold(p: Pipeline, stop: Callable[[], bool]) -> HoldResult:
            return own.hold_locks(start, moved[None, :], body.locked, should_stop=stop)

        result = await jobs.call(hold, cost=hold_cost(1))
        moved, images, probs, unheld = (result.latents[0], result.images, result.probs,
                                        result.unheld[0])
        check_in_range(moved, "moves", "the moved latent, with its locks held,",
                       "move less far")
        if local:
            images, probs, unheld = await jobs.call(
                lambda p, stop: own.local_locks(z, moved, body.moves, body.locked),
                cost=hold_cost(1))
        if not body.with_features:
            probs = None
    elif local:
        images, probs = await jobs.call(
            lambda p, stop: own.render_edit(z[None, :], moved[None, :], body.moves, True,
                                            body.with_features), cost=1)
    else:
        images, probs = await render_faces(jobs, own, moved[None, :], body.with_features)
    features = features_of(own, probs, 0)
    if kind != JSON:
        return await image_response(jobs, images[0], kind, body.size, moved, features)
    encoded = await jobs.encode(images, body.size, encode_b64, images, body.format, body.size)
    return json_response(EditResponse(latent=latent_to_list(moved), image=encoded[0],
                                      features=features, unheld=unheld,
                                      locality=local, hold_references=hold_refs))
