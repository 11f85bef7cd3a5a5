"""POST /photo/edit: a whole photo in, the same photo out with one face edited."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import JobsDep
from api.media import JSON, LATENT_HEADER, features_headers, json_response, latent_header, negotiate
from api.memory import check_memory
from api.routes.encode import require_multipart
from api.routes.latent_fields import check_in_range
from api.routes.replies import features_of
from api.routes.responses import COMMON_ERRORS, error_doc, image_200
from api.schemas import MAX_VECTOR, AxisName, Component, Finite, Format
from api.state import state_of
from tlgan.latents import latent_to_list, parse_latent
from tlgan.photos.adapter import decode_adapter, encode_adapter
from tlgan.photos.usecase import (
    PHOTO_ENCODE_STEPS,
    ModelWork,
    Photo,
    PhotoEditRequest,
    compose,
    locate,
)
from tlgan.pipeline import Pipeline
from tlgan_base.images import MEDIA_TYPES, encode_image

router = APIRouter(tags=["photos"])

#: the fields of ``edit`` whose errors name the field itself (the issue's names), not
#: ``edit.<field>``
OWN_NAMES = ("image", "face", "adapter", "latent", "eyes", "moves", "locked")


class PhotoEditIn(BaseModel):
    """The ``edit`` form field of POST /photo/edit (a JSON object)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    moves: dict[AxisName, Component] = Field(
        default_factory=dict, description="Distance to move along each (unit) axis, as /edit.")
    locked: list[AxisName] = Field(default_factory=list, max_length=1024,
                                   description="Axes kept fixed, as /edit.")
    face: int | None = Field(default=None, ge=0, description=(
        "Which face to edit: an index into the answer's `faces` (largest first); null: the "
        "largest. With `eyes`, only echoed."))
    format: Format | None = Field(default=None, description=(
        "Encoding of the edited photo; null: the photo's own (jpeg for a JPEG, else png)."))
    quality: int | None = Field(default=None, ge=1, le=100,
                                description="JPEG/WebP quality (null: 92).")
    latent: list[Finite] | None = Field(default=None, min_length=1, max_length=MAX_VECTOR,
                                        description=(
        "The face's own latent from an earlier answer for the same photo (skips encoding)."))
    adapter: str | None = Field(default=None, max_length=200_000, description=(
        "The photo adapter from an earlier answer for the same photo (with `latent`: skips "
        "tuning)."))
    eyes: list[list[Finite]] | None = Field(default=None, description=(
        "The face's eye centres [[x, y], [x, y]] from an earlier answer, in this upload's "
        "pixels (scale them with the photo): skips face finding."))
    locality: bool | None = Field(default=None, description="As /edit.")
    hold_references: bool | None = Field(default=None, description="As /edit.")
    with_features: bool = Field(default=True, description="Label the edited face.")


class PhotoFace(BaseModel):
    """A face in the photo."""

    model_config = ConfigDict(extra="forbid")

    box: list[float] = Field(description="[left, top, right, bottom] in the photo's pixels "
                             "after EXIF orientation.")
    score: float | None = Field(description="The detector's confidence; null for the face "
                                "implied by `eyes` sent by the client.")


class PhotoEditResponse(BaseModel):
    """The whole photo, edited, and what a later edit of it sends back."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="The whole photo (its width and height after EXIF "
                       "orientation), edited, base64 in `format`.")
    format: Format
    width: int
    height: int
    faces: list[PhotoFace] = Field(description="Every face found, largest first (with "
                                   "`eyes` sent: the one face they imply).")
    face: int = Field(description="Index in `faces` of the face edited.")
    latent: list[float] = Field(description="The face's own (unmoved) latent: send it back "
                                "with later edits.")
    adapter: str | None = Field(description="The photo adapter tuned to this face: send it "
                                "back with `latent`.")
    eyes: list[list[float]] = Field(description="The edited face's eye centres in the "
                                    "photo's pixels: send them back to skip finding.")
    features: dict[str, float] | None = Field(description="Probability per attribute of the "
                                              "edited face (null without labelling).")
    unheld: list[str] | None = Field(default=None, description="As /edit.")
    locality: bool = Field(default=False, description="As /edit.")
    hold_references: bool = Field(default=False, description="As /edit.")
    timings: dict[str, float] = Field(description="Seconds per stage (decode, find, encode, "
                                      "tune, edit, compose, encode_image).")


PHOTO_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    **image_200("The edited photo (JSON), or with `Accept: image/*` its bytes.", seed=False),
    400: error_doc("Unreadable body or Content-Length."),
    413: error_doc("Request body larger than the service's max_upload_bytes (names `image`)."),
    415: error_doc("Content-Type is not multipart/form-data."),
    422: error_doc("Invalid field: `image` (missing, not a JPEG/PNG/WebP (HEIC and others are "
                   "named), corrupt, too many pixels, no face found), `face` (out of range), "
                   "`latent`, `adapter` (too big, not finite, for another generator, "
                   "garbled), `eyes`, `moves`, `locked`, or `edit.<field>` (`edit` not JSON, "
                   "or another field of it invalid)."),
}

#: the name FastAPI gives the form's schema
FORM_SCHEMA = "Body_photo_edit_photo_edit_post"


def parse_edit(text: str) -> PhotoEditIn:
    """The ``edit`` field parsed; ValueError naming ``edit`` or ``edit.<field>`` (or the
    field itself, for :data:`OWN_NAMES`)."""
    try:
        raw = json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError):
        raise ValueError("edit: expected a JSON object") from None
    if not isinstance(raw, dict):
        raise ValueError("edit: expected a JSON object")
    try:
        return PhotoEditIn.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        name = loc[0] if loc and loc[0] in OWN_NAMES else "edit." + ".".join(loc[:1])
        raise ValueError(f"{name}: {err['msg']}") from None


#: bytes per pixel of the photo a photo edit holds at most (estimated, not measured): three
#: uint8 RGB copies (the upright photo, Pillow's decode buffer, the edited photo: 9) and the
#: answer twice (its encoded bytes, up to 3 per pixel for PNG, and their base64: 8); a 12 MP
#: photo about 200 MB, the default 512 MiB per request allows about 31 MP
PHOTO_BYTES_PER_PIXEL = 17


def _pixels(data: bytes) -> int:
    """The photo's pixel count from its header (0 when unreadable: decoding names it)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(im.size[0]) * int(im.size[1])
    except Exception:  # any unreadable header: the decode refuses it, named
        return 0


def _photo_format(data: bytes) -> Format:
    """The answer's default format: jpeg for a JPEG upload, else png."""
    return "jpeg" if data[:3] == b"\xff\xd8\xff" else "png"


def _request(body: PhotoEditIn, pipeline: Pipeline, steps: int) -> PhotoEditRequest:
    latent = (None if body.latent is None
              else parse_latent(body.latent, pipeline.latent_size, "latent"))
    adapter = (None if body.adapter is None
               else decode_adapter(body.adapter, pipeline.generator))
    return PhotoEditRequest(moves=body.moves, locked=body.locked, face=body.face,
                            latent=latent, adapter=adapter, eyes=body.eyes,
                            locality=body.locality, hold_references=body.hold_references,
                            with_features=body.with_features, steps=steps)


@router.post("/photo/edit", response_model=PhotoEditResponse, responses=PHOTO_ERRORS,
             dependencies=[Depends(require_multipart)])
async def photo_edit(
    request: Request,
    jobs: JobsDep,
    image: Annotated[UploadFile, File(description=(
        "The photo: JPEG (a phone's MPO JPEG: its first frame), PNG or WebP; HEIC, AVIF, "
        "GIF and other formats are not accepted. EXIF orientation is applied."))],
    edit: Annotated[str, Form(description=(
        "The edit, a JSON object (see PhotoEditIn): moves, locked, face, format, quality, "
        "latent + adapter + eyes from an earlier answer, locality, hold_references, "
        "with_features."), json_schema_extra={
            "contentMediaType": "application/json",
            "contentSchema": PhotoEditIn.model_json_schema()})] = "{}",
) -> Response:
    """Edit one face of a photo and answer the whole photo, edited, at its own resolution.

    The faces are found (or, with `eyes`, taken from the client), the chosen one aligned to
    the generator's framing, encoded (unless `latent`), a photo adapter tuned to it (unless
    `adapter`), moved as /edit moves a latent (locks and references held on the untuned
    generator's renders), rendered with the adapter, and the change composed into the photo
    under a soft face mask: everything outside the face is the photo byte for byte, and an
    edit with no moves returns the photo's pixels unchanged. Send `latent`, `adapter` and
    `eyes` of the answer back with later edits of the same photo to skip finding, encoding
    and tuning.
    """
    pipeline = jobs.pipeline
    settings = jobs.settings
    body = parse_edit(edit)
    req = _request(body, pipeline, min(settings.encode_steps, PHOTO_ENCODE_STEPS))
    plan = req.check(pipeline)
    data = await image.read()
    if not data:
        raise ValueError("image: the uploaded file is empty")
    fmt: Format = body.format or _photo_format(data)
    kind = negotiate(request.headers.get("accept"), fmt)
    pixels = _pixels(data)  # above the limit: the decode refuses it with its own words
    if pixels <= settings.max_upload_pixels:
        jobs.memory = check_memory(settings, PHOTO_BYTES_PER_PIXEL * pixels, "image",
                                   f"a photo of {pixels / 1e6:.1f} MP")
    detector = state_of(request.app).face_detector
    photo: Photo = await jobs.decode(locate, data, detector, pipeline.resolution, req.face,
                                     req.eyes, settings.max_upload_pixels)

    def model(p: Pipeline, stop: Callable[[], bool]) -> ModelWork:
        return req.run_model(pipeline, photo.located.aligned, _in_range, stop)

    work: ModelWork = await jobs.call(model, cost=req.cost(plan))
    quality = body.quality or 92
    kind_fmt = fmt if kind == JSON else kind
    edited, data_out, seconds = await jobs.decode(_compose_and_encode, photo, work, kind_fmt,
                                                  quality)
    moved = work.moved
    timings = {**photo.timings, "encode": moved.timings["encode"],
               "tune": moved.timings["tune"], "edit": moved.timings["render"], **seconds}
    features = features_of(work.attributes, None if work.probs is None else work.probs[None],
                           0)
    if kind != JSON:
        headers = {LATENT_HEADER: latent_header(moved.z)}
        if features is not None:
            headers.update(features_headers(features))
        return Response(content=data_out, media_type=MEDIA_TYPES[kind], headers=headers)
    located = photo.located
    faces, index = photo.answer_faces()
    return json_response(PhotoEditResponse(
        image=base64.b64encode(data_out).decode("ascii"), format=fmt,
        width=int(edited.shape[1]), height=int(edited.shape[0]),
        faces=[PhotoFace(**f) for f in faces], face=index, latent=latent_to_list(moved.z),
        adapter=None if moved.adapter is None else encode_adapter(moved.adapter),
        eyes=[[float(v) for v in e] for e in located.eyes], features=features,
        unheld=work.unheld, locality=work.locality, hold_references=work.hold_references,
        timings={k: round(v, 4) for k, v in timings.items()}))


def _compose_and_encode(photo: Photo, work: ModelWork, fmt: str, quality: int
                        ) -> tuple[np.ndarray, bytes, dict[str, float]]:
    """The edited photo, its encoded bytes and the seconds of both."""
    t = time.perf_counter()
    edited = compose(photo, work.moved)
    composed = time.perf_counter() - t
    t = time.perf_counter()
    data = encode_image(edited, fmt, quality=quality)
    return edited, data, {"compose": composed, "encode_image": time.perf_counter() - t}


def _in_range(z: np.ndarray, what: str) -> None:
    """A photo edit's latents must be ones requests may send back (422 naming ``moves``)."""
    check_in_range(z, "moves", what, "move less far")

