"""POST /encode: a face photo in, a latent (and its face) out, ready for /edit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile

from api.deps import JobsDep
from api.media import encode_b64, json_response
from api.routes.latent_fields import check_in_range
from api.routes.limits import check_limits
from api.routes.replies import features_of
from api.routes.responses import COMMON_ERRORS, error_doc
from api.schemas import EncodeQuality, EncodeResponse, Format, FoundFace
from api.state import state_of
from tlgan.latents import latent_to_list
from tlgan.photos.adapter import Adapter, TuneSettings, encode_adapter
from tlgan.photos.prepare import align_photo, faces_json
from tlgan.photos.usecase import encode_adapter_cost, encode_with_adapter
from tlgan.pipeline import EncodeResult, Pipeline
from tlgan_base.domain_errors import shown
from tlgan_base.image_codec import MIN_SIZE

router = APIRouter(tags=["faces"])


async def require_multipart(request: Request) -> None:
    """415 unless the body is declared as ``multipart/form-data``."""
    ctype = request.headers.get("content-type") or ""
    media = ctype.split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise HTTPException(415, "Content-Type: expected multipart/form-data with the photo "
                            f"in the field 'image', got {shown(media or 'none')}")


ENCODE_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    400: error_doc("Unreadable body or Content-Length."),
    413: error_doc("Request body larger than the service's max_upload_bytes (names `image`)."),
    415: error_doc("Content-Type is not multipart/form-data."),
    422: error_doc("Invalid field: `image` (missing, not a file, not a JPEG/PNG/WebP (HEIC and "
              "others are named), corrupt, too many pixels, no face found), `face` (index "
              "out of range), `steps` (above the service's max_encode_steps), `size`, "
              "`format`, `adapter_parts`."),
}


#: the name FastAPI gives the form's schema (api.openapi publishes its service limits)
FORM_SCHEMA = "Body_encode_encode_post"


@router.post("/encode", response_model=EncodeResponse, responses=ENCODE_ERRORS,
             dependencies=[Depends(require_multipart)])
async def encode(
    request: Request,
    jobs: JobsDep,
    image: Annotated[UploadFile, File(description=(
        "Any photo with a face: JPEG (a phone's MPO JPEG too: its first frame), PNG or "
        "WebP; HEIC, AVIF, GIF and other formats are not accepted. EXIF orientation is "
        "applied, the faces are found and the chosen one is aligned to CelebA's framing "
        "(docs/photos.md)."))],
    face: Annotated[int | None, Form(ge=0, description=(
        "Which face to encode: an index into the answer's `faces` (largest first); "
        "null: the largest."))] = None,
    steps: Annotated[int | None, Form(ge=0, description=(
        "Refinement steps after the encoder (0: the encoder alone; more: closer, slower); "
        "null: the service's default (TLGAN_ENCODE_STEPS), at most TLGAN_MAX_ENCODE_STEPS "
        "(the maximum stated here)."
    ))] = None,
    format: Annotated[Format, Form(description="Image encoding of `image`.")] = "png",
    size: Annotated[int | None, Form(ge=MIN_SIZE, description=(
        "Output width = height in pixels (null: the generator's resolution)."))] = None,
    with_features: Annotated[bool, Form(description=(
        "Label the reconstruction with the feature extractor."))] = True,
    adapter: Annotated[bool, Form(description=(
        "Tune a photo adapter to the face (the answer's `adapter`; the reconstruction is "
        "rendered with it); false: skip tuning (faster; `adapter` is then null)."))] = True,
    adapter_parts: Annotated[Literal["bn", "bn+last"], Form(description=(
        "What the adapter tunes: `bn+last` (BatchNorm scales and biases and the last "
        "convolution: closest to the photo) or `bn` (BatchNorm only: a little less close, no "
        "fine grid when the face is shown enlarged, edits keep more of their move; "
        "docs/photos.md). /edit and /interpolate take either (the adapter names its "
        "parts)."))] = "bn+last",
) -> Response:
    """Encode a face photo into the generator's latent space.

    The faces in the photo are found (``faces``, largest first) and face ``face`` is
    aligned to the generator's framing at its resolution; the encoder network gives a
    latent, and ``steps`` steps of Adam on it (from several starting points, the best kept)
    bring the face it renders closer to the
    photo. The answer's ``latent`` goes to /edit and /interpolate like any other;
    ``quality`` says how close the reconstruction is (pixel PSNR, embedding cosine, label
    agreement; with the adapter, ``psnr`` is the adapted reconstruction's).

    With ``adapter`` (the default) a photo adapter is tuned to the face (a small part of the
    generator, about 2 s): ``image`` is the reconstruction rendered with it, and the answer's
    ``adapter`` goes with ``latent`` to /edit, /interpolate and /photo/edit. ``eyes`` are the
    face's eye centres in the photo (for /photo/edit).
    """
    pipeline = jobs.pipeline
    settings = jobs.settings
    budget = settings.encode_steps if steps is None else steps
    if budget > settings.max_encode_steps:
        raise ValueError(f"steps: at most {settings.max_encode_steps} on this service, got "
                         f"{budget}")
    jobs.memory = check_limits(settings, size, 1, format, pipeline.resolution)
    if pipeline.encoder is None:
        raise ValueError(f"image: this service has no photo encoder for generator "
                         f"{pipeline.generator.name!r} (start it with TLGAN_ENCODER set to "
                         "one trained by `tlgan encoder train`)")
    data = await image.read()
    if not data:
        raise ValueError("image: the uploaded file is empty")
    found = await jobs.decode(align_photo, data, state_of(request.app).face_detector,
                              pipeline.resolution, face, settings.max_upload_pixels)
    photo = found.aligned

    tune = TuneSettings(parts=adapter_parts) if adapter else None

    def run(p: Pipeline, stop: Callable[[], bool]) -> tuple[EncodeResult, Adapter | None]:
        return encode_with_adapter(p, photo, budget, with_features=with_features, tune=tune,
                                   should_stop=stop)

    result, tuned = await jobs.call(run, cost=encode_adapter_cost(budget, tune))
    z = result.latents[0]
    check_in_range(z, "image", "the encoded latent", "try fewer steps")
    features = features_of(pipeline.attributes, result.probs, 0)
    images = await jobs.display(result.images, size)
    encoded = await jobs.encode(images, size, encode_b64, images, format, size)
    return json_response(EncodeResponse(
        latent=latent_to_list(z), image=encoded[0], features=features,
        quality=EncodeQuality(**result.quality[0]), steps=result.steps,
        generator=pipeline.generator.name,
        faces=[FoundFace(**f) for f in faces_json(found.faces)], face=found.face,
        adapter=None if tuned is None else encode_adapter(tuned),
        eyes=[[float(v) for v in e] for e in found.faces[found.face].eyes]))
