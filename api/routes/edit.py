"""POST /edit: move a latent along feature axes (with locks) and render it."""

from __future__ import annotations

import dataclasses

import numpy as np
from fastapi import APIRouter, Request, Response

from api.deps import JobsDep, JsonBody
from api.jobs import RequestJobs
from api.media import JSON, encode_b64, json_response, realism_headers
from api.routes.custom_axes import run_edit, with_custom_axes
from api.routes.latent_fields import adapter, check_in_range
from api.routes.limits import check_limits
from api.routes.replies import FaceReply, features_of, image_response
from api.routes.responses import BODY_ERRORS, image_200
from api.schemas import EditRequest, EditResponse, RealismOutcome
from tlgan.latents import latent_to_list
from tlgan.photos.usecase import adapted_faces
from tlgan.pipeline.edit_plan import EditResult, plan_edit

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

    ``adapter`` (from /encode or /photo/edit, with the latent it came with) renders the face
    with the generator tuned to that photo; locks and references are held on the untuned
    renders, and the edit is global (``locality: true`` with an adapter: 422).

    ``hold_references`` (default: on when an extractor is loaded) also holds, per face, the
    reference attributes (gender, age) the edit does not move, with corrections orthogonal
    to the moved axes; the moved attributes keep what the open-loop move gave them.

    With a realism critic loaded, the edited face's realism is checked: ``realism`` in the
    answer (``X-Realism`` for images) gives the critic's scores of the start and edited
    faces and whether the edited one stayed within 0.5 of the start's (``held``).
    ``realism: true`` also holds it: a face that fell is corrected up the critic's gradient,
    orthogonal to the moved, locked and held axes (at most 4 steps). Default off (chosen
    on bench/quality_edits.py); ``realism: true`` without a critic: 422.
    """
    jobs.memory = check_limits(jobs.settings, body.size, 1, body.format,
                               jobs.pipeline.resolution)
    reply = FaceReply.negotiate(request, body.format, body.size)
    tuned = adapter(body.adapter, jobs.pipeline)
    locality = body.locality
    if tuned is not None:
        if locality:
            raise ValueError("locality: a local edit is not rendered with an adapter (send "
                             "locality false or null)")
        locality = False
    own = await with_custom_axes(jobs, body.custom_axes)
    plan = plan_edit(own, [body.latent], body.moves, body.locked, locality=locality,
                     hold_references=body.hold_references, with_features=body.with_features,
                     check=_in_range, realism=body.realism)
    result = await run_edit(jobs, plan)
    if tuned is not None:
        moved = result.latents
        faces = await jobs.call(lambda p, stop: adapted_faces(p, moved, tuned),
                                cost=len(moved))
        result = dataclasses.replace(result, images=faces)
    return await _answer(jobs, reply, result)


async def _answer(jobs: RequestJobs, reply: FaceReply, result: EditResult) -> Response:
    """The edited face as image bytes or as JSON (:class:`EditResponse`)."""
    moved = result.latents[0]
    features = features_of(result.attributes, result.probs, 0)
    realism = None if result.realism is None else result.realism.face(0)
    images = await jobs.display(result.images, reply.size)
    if reply.kind != JSON:
        return await image_response(jobs, images[0], reply.kind, reply.size, moved,
                                    features, extra=realism_headers(realism))
    encoded = await jobs.encode(images, reply.size, encode_b64, images, reply.fmt, reply.size)
    return json_response(EditResponse(
        latent=latent_to_list(moved), image=encoded[0], features=features,
        unheld=None if result.unheld is None else result.unheld[0],
        locality=result.locality, hold_references=result.hold_references,
        realism=None if realism is None else RealismOutcome.model_validate(realism)))


def _in_range(z: np.ndarray, what: str) -> None:
    """An edit's latents must be ones requests may send back (422 naming ``moves``)."""
    check_in_range(z, "moves", what, "move less far")
