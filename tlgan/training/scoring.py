"""``tlgan generator score``: the Fréchet distance of any generator's faces to real test faces,
beside the real-vs-real floor."""

from __future__ import annotations

from typing import Any

import torch

from tlgan.generators import load_generator
from tlgan.latents import check_truncation
from tlgan.training.config import _stream_seed
from tlgan.training.data import load_image_set
from tlgan.training.frechet import (
    EmbeddingExtractor,
    Reference,
    embed_generated,
    load_metric_extractor,
)
from tlgan_base.devices import resolve_device


def score_generator(generator: str | None, data: str, *, n: int = 2000,
                    extractor: EmbeddingExtractor | str | None = None, device: str = "cpu",
                    seed: int = 0, truncation: float = 1.0) -> dict[str, Any]:
    """FD of a generator's faces to a data directory's test faces, with the real floor.

    The latents are standard normal times ``truncation`` (psi in (0, 1]).

    Returns a JSON-ready dict: ``fd``, ``floor``, ``n``, ``n_reference``, ``generator``,
    ``extractor``, ``data_checksum``, ``truncation``.
    """
    if n < 2:
        raise ValueError(f"n: must be >= 2, got {n}")
    check_truncation(truncation)
    dev = resolve_device(device)
    gen = load_generator(generator, dev)
    images = load_image_set(data, gen.resolution)
    ext = extractor if extractor is not None and not isinstance(extractor, str) \
        else load_metric_extractor(extractor, dev)
    ref = Reference(ext, images.train, images.test, n, dev, seed=_stream_seed(seed, "subset"))
    z = torch.randn(n, gen.latent_size, generator=torch.Generator().manual_seed(
        _stream_seed(seed, "eval"))) * truncation
    emb = embed_generated(ext, gen.render_tensor, z.to(dev))
    return {
        "fd": ref.score(emb),
        "floor": ref.floor,
        "n": n,
        "n_reference": ref.n_ref,
        "reference": ref.reference,
        "generator": gen.name,
        "extractor": ref.extractor_name,
        "data_checksum": images.source_sha256,
        "truncation": truncation,
    }


__all__ = ["score_generator"]
