"""POST /interpolate: faces between two latents."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import JobsDep, JsonBody
from api.media import encode_b64, negotiate
from api.routes.custom_axes import render_faces, with_custom_axes
from api.routes.latent_fields import adapter, check_in_range, latent
from api.routes.limits import check_limits
from api.routes.replies import features_of
from api.routes.responses import BODY_ERRORS, NOT_ACCEPTABLE
from api.schemas import InterpolatedFace, InterpolateRequest, InterpolateResponse
from tlgan.latents import latent_to_list, steps_ratios
from tlgan.photos.usecase import adapted_faces

router = APIRouter(tags=["faces"])


@router.post("/interpolate", response_model=InterpolateResponse, dependencies=[JsonBody],
             responses={**BODY_ERRORS, **NOT_ACCEPTABLE})
async def interpolate(body: InterpolateRequest, request: Request, jobs: JobsDep
                      ) -> InterpolateResponse:
    """Faces at ``ratio`` (one) or at ``steps`` evenly spaced ratios from latent_a to latent_b.

    ``slerp`` keeps intermediate latents at a typical norm; ``lerp`` is a straight line.
    Ratio 0 is exactly latent_a and ratio 1 exactly latent_b. Between long latents far apart,
    slerp can leave the range requests may use ([-1000, 1000] per component): that is
    refused with 422 naming ``method`` (lerp never leaves it). ``adapter`` (from /encode or
    /photo/edit) renders every face with the generator tuned to that photo (one adapter for
    both ends); ``features`` label the untuned renders.
    """
    pipeline = jobs.pipeline
    jobs.memory = check_limits(jobs.settings, body.size, body.steps or 1, body.format,
                               pipeline.resolution, count_field="steps")
    negotiate(request.headers.get("accept"), body.format, allow_image=False)  # JSON only
    a = latent(body.latent_a, pipeline, "latent_a")
    b = latent(body.latent_b, pipeline, "latent_b")
    tuned = adapter(body.adapter, pipeline)
    ratios = [body.ratio] if body.ratio is not None else steps_ratios(body.steps or 2)
    zs = pipeline.interpolate(a, b, ratios, body.method)
    check_in_range(zs, "method", f"{body.method} from latent_a to latent_b",
                   "use lerp, or shorter latents")
    own = await with_custom_axes(jobs, body.custom_axes)
    images, probs = await render_faces(jobs, own, zs, body.with_features)
    if tuned is not None:
        images = await jobs.call(lambda p, stop: adapted_faces(p, zs, tuned), cost=len(zs))
    images = await jobs.display(images, body.size)
    encoded = await jobs.encode(images, body.size, encode_b64, images, body.format, body.size)
    faces = [InterpolatedFace(ratio=r, latent=latent_to_list(zs[i]), image=encoded[i],
                              features=features_of(own.attributes, probs, i))
             for i, r in enumerate(ratios)]
    return InterpolateResponse(faces=faces, generator=pipeline.generator.name,
                               bundle=pipeline.bundle_id)
