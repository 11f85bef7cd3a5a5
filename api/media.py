"""Content negotiation and image/latent encoding for responses.

Raw image responses: ``/generate`` (count 1) and ``/edit`` answer with the image bytes
when the ``Accept`` header prefers ``image/png``, ``image/jpeg`` or ``image/webp`` over
``application/json`` (``image/*`` uses the request's ``format``). The face's metadata then
travels in headers:

* ``X-Latent``: the latent as base64 of float32 little-endian bytes (exact);
* ``X-Seed``: the seed (``/generate`` only);
* ``X-Features``: compact JSON ``{attribute: probability}`` (only with ``with_features``),
  when it fits in :data:`MAX_FEATURES_HEADER` bytes; otherwise (many custom axes with long
  names) the header is left out and ``X-Features-Omitted`` says why: a proxy refuses a
  response whose headers exceed its buffer (nginx's default is 4 or 8 KiB in all).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tlgan_base.domain_errors import shown
from tlgan_base.image_codec import MEDIA_TYPES, encode_image

T = TypeVar("T")
#: Encoding at most this many output pixels runs on the event loop (a 64x64 PNG takes about
#: 0.2 ms, less than a hop to the thread pool and back); more goes to the thread pool so a
#: large request (64 faces, or upscaled ones) never stalls other requests.
INLINE_PIXELS = 2 * 128 * 128
#: most big encodes (over INLINE_PIXELS) running at once per app
BIG_ENCODES = 2

JSON = "json"
_IMAGE_TYPES = {v: k for k, v in MEDIA_TYPES.items()}  # "image/png" -> "png"
LATENT_HEADER = "X-Latent"
SEED_HEADER = "X-Seed"
FEATURES_HEADER = "X-Features"
FEATURES_OMITTED_HEADER = "X-Features-Omitted"
#: an edit's realism outcome, compact JSON (as the JSON answer's ``realism``)
REALISM_HEADER = "X-Realism"
#: the longest X-Features header sent (bytes): the 40 CelebA attributes take about 1 KiB
MAX_FEATURES_HEADER = 2048


class NotAcceptable(Exception):
    """The Accept header allows none of the response types (HTTP 406)."""


def _parse_accept(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append((media, q))
    return ranges


def _quality(ranges: list[tuple[str, float]], media: str) -> float:
    kind = media.split("/")[0]
    best, specificity = 0.0, -1
    for rng, q in ranges:
        if rng == media:
            spec = 2
        elif rng == f"{kind}/*":
            spec = 1
        elif rng == "*/*":
            spec = 0
        else:
            continue
        if spec > specificity:
            best, specificity = q, spec
    return best


def negotiate(accept: str | None, fmt: str, allow_image: bool = True) -> str:
    """Return ``"json"`` or an image format (``"png"``/``"jpeg"``/``"webp"``) for ``accept``.

    JSON wins ties; among images, the request's ``fmt`` wins ties. Without an Accept header
    the answer is JSON. Raises NotAcceptable when nothing offered is acceptable.
    """
    if not accept or not accept.strip():
        return JSON
    ranges = _parse_accept(accept)
    offers = [("application/json", JSON)]
    if allow_image:
        offers.append((MEDIA_TYPES[fmt], fmt))
        offers += [(media, name) for name, media in MEDIA_TYPES.items() if name != fmt]
    best, best_q = None, 0.0
    for media, name in offers:
        q = _quality(ranges, media)
        if q > best_q:
            best, best_q = name, q
    if best is None:
        if not allow_image and any(r.startswith("image/") for r, q in ranges if q > 0):
            raise NotAcceptable("Accept: raw image answers are only offered for a single face "
                                "(/generate with count 1, /edit); ask for application/json")
        raise NotAcceptable(f"Accept: none of application/json, {', '.join(_IMAGE_TYPES)} "
                            f"is acceptable in {shown(accept)}")
    return best


def encode_b64(images: np.ndarray, fmt: str, size: int | None) -> list[str]:
    """Encode uint8 faces (N, H, W, 3) and return base64 strings (CPU work: see
    :func:`off_loop`)."""
    return [base64.b64encode(encode_image(img, fmt, size)).decode("ascii") for img in images]


async def off_loop(images: np.ndarray, size: int | None,
                   fn: Callable[..., T], *args: object,
                   limit: asyncio.Semaphore | None = None) -> T:
    """Run the encoder ``fn(*args)`` for ``images`` (N, H, W, 3) resized to ``size``: inline
    when the output is small (:data:`INLINE_PIXELS`), else in the thread pool, at most
    ``limit``'s value of them at once (big encodes hold tens of MB each: many at once made
    the process's memory jump and stay)."""
    side = size or int(images.shape[1])
    if int(images.shape[0]) * side * side <= INLINE_PIXELS:
        return fn(*args)
    if limit is None:
        return await run_in_threadpool(fn, *args)
    async with limit:
        return await run_in_threadpool(fn, *args)


def json_response(model: BaseModel) -> Response:
    """``model`` (already validated: it was constructed) as a JSON response, serialized the
    way FastAPI serializes a ``response_model`` (same bytes), without FastAPI validating it a
    second time on the way out."""
    return Response(type(model).__pydantic_serializer__.to_json(model, by_alias=True),
                    media_type="application/json")


def latent_header(z: np.ndarray) -> str:
    """A latent as base64 of float32 little-endian bytes (the ``X-Latent`` header)."""
    return base64.b64encode(np.asarray(z, dtype="<f4").tobytes()).decode("ascii")


def decode_latent_header(value: str) -> np.ndarray:
    """Inverse of :func:`latent_header`."""
    return np.frombuffer(base64.b64decode(value), dtype="<f4").astype(np.float32)


def features_header(features: dict[str, float]) -> str:
    """Compact JSON of the features (the ``X-Features`` header; ASCII: other characters of
    names are escaped)."""
    return json.dumps(features, separators=(",", ":"))


def realism_headers(realism: dict[str, float | bool] | None) -> dict[str, str]:
    """``X-Realism`` (compact JSON) of an edit's realism outcome; none without one."""
    if realism is None:
        return {}
    return {REALISM_HEADER: json.dumps(realism, separators=(",", ":"))}


def features_headers(features: dict[str, float]) -> dict[str, str]:
    """``X-Features`` when it fits in :data:`MAX_FEATURES_HEADER` bytes, else
    ``X-Features-Omitted`` saying why and where to get them."""
    text = features_header(features)
    if len(text) <= MAX_FEATURES_HEADER:
        return {FEATURES_HEADER: text}
    return {FEATURES_OMITTED_HEADER: f"{len(features)} features take {len(text)} bytes, more "
            f"than the {MAX_FEATURES_HEADER} a header may carry here; ask for "
            "application/json to get them"}
