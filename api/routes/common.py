"""Helpers shared by the face routes: documented error responses, checks, image answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from fastapi import Response

from api.jobs import RequestJobs
from api.media import (
    FEATURES_HEADER,
    FEATURES_OMITTED_HEADER,
    LATENT_HEADER,
    MAX_FEATURES_HEADER,
    SEED_HEADER,
    features_headers,
    latent_header,
)
from api.memory import check_memory, faces_memory
from api.schemas import BOUND, MAX_STEPS, CustomAxisIn, ErrorResponse
from api.settings import Settings
from tlgan.latents import parse_latent
from tlgan.pipeline import Pipeline
from tlgan_base.images import MEDIA_TYPES, encode_image


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


#: Error answers every protected route may give.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _err("Missing or wrong X-API-Key (only when the service has an API key)."),
    500: _err("Internal error (never caused by client input; details are in the server log)."),
    503: {**_err("Models not loaded yet, shutting down, or the render queue is full."),
          "headers": {"Retry-After": {"description": "Seconds to wait before retrying.",
                                      "schema": {"type": "integer"}}}},
}

#: Error answers of routes with a JSON body.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    400: _err("Unreadable body or Content-Length."),
    413: _err("Request body larger than the service's max_body_bytes."),
    415: _err("Content-Type is not application/json."),
    422: _err("Invalid field: the message names it (type, range, length, unknown name, "
              "NaN/Infinity, service limits)."),
}

NOT_ACCEPTABLE: dict[int | str, dict[str, Any]] = {
    406: _err("Accept allows neither JSON nor (where offered) an image type."),
}

_BINARY = {"schema": {"type": "string", "format": "binary"}}


def image_200(description: str, seed: bool) -> dict[int | str, dict[str, Any]]:
    """OpenAPI for a 200 that is JSON, or raw image bytes when Accept asks for an image."""
    headers: dict[str, Any] = {
        LATENT_HEADER: {"description": "Raw image answers: the latent, base64 of float32 "
                        "little-endian.", "schema": {"type": "string"}},
        FEATURES_HEADER: {"description": "Raw image answers with with_features: JSON "
                          "{attribute: probability}, when it fits in "
                          f"{MAX_FEATURES_HEADER} bytes.", "schema": {"type": "string"}},
        FEATURES_OMITTED_HEADER: {"description": "Instead of X-Features when the features "
                                  "do not fit in a header: why (ask for JSON to get them).",
                                  "schema": {"type": "string"}},
    }
    if seed:
        headers[SEED_HEADER] = {"description": "Raw image answers: the face's seed.",
                                "schema": {"type": "string"}}
    return {
        200: {"description": description,
              "content": {media: _BINARY for media in MEDIA_TYPES.values()},
              "headers": headers},
        406: _err("Accept allows neither JSON nor an image type (or asks for an image of "
                  "several faces)."),
    }


#: encoded bytes per output pixel of a face, at the upper end of what the shipped generator's
#: faces take (PNG 0.95-1.2, JPEG q92 about 0.15, WebP about 0.1, measured at 256-384 px)
BYTES_PER_PIXEL = {"png": 1.25, "jpeg": 0.25, "webp": 0.2}


def max_faces(settings: Settings, count_field: str = "count") -> int:
    """The most faces one request may ask for in ``count_field`` (``count`` of /generate,
    ``steps`` of /interpolate, which also stays within MAX_STEPS)."""
    return min(settings.max_count, MAX_STEPS) if count_field == "steps" else settings.max_count


def check_limits(settings: Settings, size: int | None, count: int = 1, fmt: str = "png",
                 native: int = 64, count_field: str = "count", extra_memory: float = 0.0
                 ) -> float:
    """ValueError (-> 422) when a request exceeds this service's configured limits: face
    count (the request's ``count_field``), image size, the response's size (``count``
    faces of ``size`` px, or ``native`` px, in ``fmt``, base64) and the memory the request
    may use (:func:`api.memory.faces_memory` plus ``extra_memory``), estimated before any
    work is done. These are the only upper limits of those fields (the schema states them).
    Returns the memory estimate (bytes), for admission (``RequestJobs.memory``)."""
    most = max_faces(settings, count_field)
    if count > most:
        raise ValueError(f"{count_field}: at most {most} faces per request on this service")
    if size is not None and size > settings.max_size:
        raise ValueError(f"size: at most {settings.max_size} pixels on this service")
    px = size or native
    estimate = count * px * px * BYTES_PER_PIXEL.get(fmt, 1.25) * 4 / 3
    if estimate > settings.max_response_bytes:
        fields = "size" if count == 1 else f"{count_field}, size"  # what the client can lower
        faces = (f"1 {fmt} face of {px} px comes" if count == 1
                 else f"{count} {fmt} faces of {px} px come")
        raise ValueError(
            f"{fields}: {faces} to about "
            f"{_amount(estimate)}, above this service's response limit of "
            f"{_amount(settings.max_response_bytes)}; ask for fewer or smaller faces, or "
            "jpeg/webp")
    memory = faces_memory(count, size, native, settings.max_batch, fmt) + extra_memory
    fields = "size" if count == 1 else f"{count_field}, size"
    what = f"1 face of {px} px" if count == 1 else f"{count} faces of {px} px"
    return check_memory(settings, memory, fields, what)


def _amount(n: float) -> str:
    """Bytes as whole MiB, or KiB below 1 MiB."""
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def latent(values: list[float], pipeline: Pipeline, name: str) -> np.ndarray:
    """A validated (latent_size,) float32 latent, or ValueError naming ``name``."""
    return parse_latent(values, pipeline.latent_size, name)


def check_in_range(z: np.ndarray, field: str, what: str, hint: str) -> None:
    """ValueError naming ``field`` unless every component of the latents ``z`` lies in the
    range requests may use ([-BOUND, BOUND]): every latent the service answers with must be
    one it accepts back. ``what`` says how the latent was made, ``hint`` what to do."""
    top = float(np.abs(z).max()) if z.size else 0.0
    if not top <= BOUND:
        raise ValueError(f"{field}: {what} leaves the latent range [-{BOUND:g}, {BOUND:g}] "
                         f"(a component reaches {top:.6g}); {hint}")


def features_of(pipeline: Pipeline, probs: np.ndarray | None, i: int
                ) -> dict[str, float] | None:
    """Face ``i``'s features as a dict, or None without labelling."""
    if probs is None:
        return None
    row = probs[i]
    if not np.isfinite(row).all():
        raise ValueError("latent: the models produced invalid output for this latent")
    return pipeline.features_dict(row)


#: face-passes charged per custom head for fitting its logit slope on the shipped samples
#: (5,000 samples: about 60 ms per head on a loaded 2-core CPU, where a face-pass takes
#: 17-65 ms)
HEAD_SLOPE_COST = 1.0


async def with_custom_axes(jobs: RequestJobs, axes: Mapping[str, list[float] | CustomAxisIn]
                           ) -> Pipeline:
    """The request's pipeline plus its ``custom_axes``: :meth:`Pipeline.with_custom`; the
    pipeline itself when there are none.

    Validation (directions, heads for this extractor) is cheap and runs here, so bad input is
    refused at once (422 naming the field); fitting each head's slope on the shipped samples
    is CPU work (seconds for 32 heads), so it runs as a job of the scheduler, with a cost of
    :data:`HEAD_SLOPE_COST` face-passes per head, never on the event loop."""
    pipeline = jobs.pipeline
    if not axes:
        return pipeline
    dirs: dict[str, list[float]] = {}
    heads: dict[str, dict[str, Any]] = {}
    for name, value in axes.items():
        if isinstance(value, CustomAxisIn):
            dirs[name] = value.direction
            if value.head is not None:
                heads[name] = value.head.model_dump()
        else:
            dirs[name] = value
    custom = pipeline.custom_axes(dirs)
    parsed = pipeline.custom_heads(heads)
    if not parsed:
        return pipeline.with_custom(custom)

    def fit(p: Pipeline, stop: Callable[[], bool]) -> Pipeline:
        return pipeline.with_custom(custom, parsed)

    return await jobs.call(fit, cost=HEAD_SLOPE_COST * len(parsed))


async def image_response(jobs: RequestJobs, image: np.ndarray, fmt: str, size: int | None,
                         z: np.ndarray, features: dict[str, float] | None,
                         seed: int | None = None) -> Response:
    """Raw image bytes with the latent (and seed / features) in headers."""
    data = await jobs.encode(image[None], size, encode_image, image, fmt, size)
    headers = {LATENT_HEADER: latent_header(z)}
    if seed is not None:
        headers[SEED_HEADER] = str(seed)
    if features is not None:
        headers.update(features_headers(features))
    return Response(content=data, media_type=MEDIA_TYPES[fmt], headers=headers)


async def render_faces(jobs: RequestJobs, own: Pipeline, z: np.ndarray, with_features: bool
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """Render (and label) latents: in a shared batch, or, when the request brings heads of
    its own (``own`` from :func:`with_custom_axes`), alone with them."""
    if not with_features or own.head_axes == jobs.pipeline.head_axes:
        return await jobs.render(z, with_features)

    def label(p: Pipeline, stop: Callable[[], bool]) -> tuple[np.ndarray, np.ndarray | None]:
        return own.render_and_label(z)

    return await jobs.call(label, cost=len(z))
