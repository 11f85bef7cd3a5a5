"""Photo encoding: face photos in, latents of a pipeline's space and their faces out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tlgan.encoders import DEFAULT_STARTS
from tlgan.encoders.photo_encoder import PhotoEncoder
from tlgan.pipeline.models import Models

__all__ = ["EncodeResult", "encode_photos"]


@dataclass
class EncodeResult:
    """Photos encoded: latents (N, L) of the pipeline's space, the faces they render
    (uint8 (N, H, W, 3)), their labels (N, A) or None, and each reconstruction's quality
    (``psnr`` in dB at the generator's resolution; with an extractor also
    ``embedding_cosine`` and ``label_agreement``, photo vs reconstruction)."""

    latents: np.ndarray
    images: np.ndarray
    probs: np.ndarray | None
    quality: list[dict[str, float]]
    steps: int


def encode_photos(encoder: PhotoEncoder | None, models: Models, photos: np.ndarray,
                  steps: int, *, starts: int = DEFAULT_STARTS, with_features: bool = True,
                  should_stop: Callable[[], bool] | None = None) -> EncodeResult:
    """Encode face photos (uint8 (N, R, R, 3), framed like CelebA's aligned crops, at
    the generator's resolution R) into latents of ``models.space``: the encoder, then
    ``steps`` refinement steps from ``starts`` starting points. The faces answered are
    rendered from the latents answered, exactly as ``models.render_and_label`` renders
    them.

    Raises:
        ValueError: no encoder is loaded, or the photos are malformed (naming ``image``).
        Stopped: ``should_stop`` turned true between refinement steps.
    """
    if encoder is None:
        raise ValueError(f"image: this service has no photo encoder for generator "
                         f"{models.generator.name!r} (train one with `tlgan encoder "
                         "train` and serve it with TLGAN_ENCODER)")
    enc = encoder.encode(photos, models.extractor, steps, starts=starts,
                         should_stop=should_stop)
    z = models.generator.to_space(enc.z, models.space)
    images, probs = models.render_and_label(z, with_features and models.extractor is not None)
    return EncodeResult(latents=z, images=images, probs=probs, quality=enc.quality,
                        steps=enc.steps)
