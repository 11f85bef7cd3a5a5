"""A face's answer: its features as a dict, or its image bytes with the latent (and seed and
features) in headers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from fastapi import Request, Response

from api.jobs import RequestJobs
from api.media import LATENT_HEADER, SEED_HEADER, features_headers, latent_header, negotiate
from tlgan_base.image_codec import MEDIA_TYPES, encode_image


def features_of(attributes: Sequence[str], probs: np.ndarray | None, i: int
                ) -> dict[str, float] | None:
    """Face ``i``'s features as a dict {attribute: probability}, or None without
    labelling."""
    if probs is None:
        return None
    row = probs[i]
    if not np.isfinite(row).all():
        raise ValueError("latent: the models produced invalid output for this latent")
    return {a: float(p) for a, p in zip(attributes, row, strict=True)}


async def image_response(jobs: RequestJobs, image: np.ndarray, fmt: str, size: int | None,
                         z: np.ndarray, features: dict[str, float] | None,
                         seed: int | None = None, extra: Mapping[str, str] | None = None
                         ) -> Response:
    """Raw image bytes with the latent (and seed / features / ``extra`` headers) in
    headers."""
    data = await jobs.encode(image[None], size, encode_image, image, fmt, size)
    headers = {LATENT_HEADER: latent_header(z)}
    if seed is not None:
        headers[SEED_HEADER] = str(seed)
    if features is not None:
        headers.update(features_headers(features))
    headers.update(extra or {})
    return Response(content=data, media_type=MEDIA_TYPES[fmt], headers=headers)


@dataclass(frozen=True)
class FaceReply:
    """How a request's faces are answered: ``kind`` "json" or the image format the client
    accepts (:func:`api.media.negotiate`), the request's ``fmt`` (of JSON's base64 images)
    and ``size`` (None: the generator's)."""

    kind: str
    fmt: str
    size: int | None

    @classmethod
    def negotiate(cls, request: Request, fmt: str, size: int | None) -> FaceReply:
        """The reply the request's Accept header asks for (406 when none is acceptable)."""
        return cls(negotiate(request.headers.get("accept"), fmt), fmt, size)
