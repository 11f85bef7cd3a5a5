"""A face's answer: its features as a dict, or its image bytes with the latent (and seed and
features) in headers."""

from __future__ import annotations

import numpy as np
from fastapi import Response

from api.jobs import RequestJobs
from api.media import LATENT_HEADER, SEED_HEADER, features_headers, latent_header
from tlgan.pipeline import Pipeline
from tlgan_base.images import MEDIA_TYPES, encode_image


def features_of(pipeline: Pipeline, probs: np.ndarray | None, i: int
                ) -> dict[str, float] | None:
    """Face ``i``'s features as a dict, or None without labelling."""
    if probs is None:
        return None
    row = probs[i]
    if not np.isfinite(row).all():
        raise ValueError("latent: the models produced invalid output for this latent")
    return pipeline.features_dict(row)


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
