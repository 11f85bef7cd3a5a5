"""Build a sample cache: seeded latents -> faces -> extractor probabilities and embeddings.

Sample ``i`` of a cache with seed ``s`` is the latent of seed ``s + i`` (tlgan.latents), so
a cache is reproducible, a resumed run is identical to an uninterrupted one, and any sample can
be re-rendered through the API with its seed. A cache records the generator latent space its
latents live in (``latent_space``: "z", or "w" = the mapped z of each seed); axes fitted on it
live in the same space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from axes.sample_writer import SampleCacheWriter
from feature_extractor.model import Extractor
from tlgan.generators.base import FaceGenerator
from tlgan_base.progress import progress_bar


def render_and_embed(generator: FaceGenerator, extractor: Extractor, z: np.ndarray,
                     batch: int = 256, space: str = "z") -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, A) and embeddings (N, E) of the faces rendered from latents z of
    ``space``."""
    probs, embs = [], []
    for start in range(0, len(z), batch):
        chunk = z[start : start + batch]
        x = (generator.render_tensor(chunk) if space == "z"
             else generator.render_tensor(chunk, space))
        with torch.inference_mode():
            p, e = extractor.forward_tensor(x)
        probs.append(p.float().cpu().numpy())
        embs.append(e.float().cpu().numpy())
    return np.concatenate(probs), np.concatenate(embs)


def build_sample_cache(generator: FaceGenerator, extractor: Extractor, out: str | Path, *,
                       n: int, seed: int = 0, truncation: float = 1.0, chunk: int = 2048,
                       batch: int = 256, restart: bool = False, progress: bool = True,
                       space: str = "z") -> Path:
    """Sample, render and label ``n`` faces into the sample-cache artifact ``out``.

    ``space``: the generator latent space to sample in (see the module docstring).

    Completed chunks survive an interruption: running the same command again resumes. A
    work folder written with other settings is refused (``restart=True`` discards it).
    """
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    if seed < 0:
        raise ValueError(f"seed: must be >= 0, got {seed}")
    latent_space = generator.space(space)
    meta: dict[str, Any] = {
        "generator": generator.name,
        "generator_sha256": generator.sha256,
        "extractor": extractor.name,
        "extractor_sha256": extractor.sha256,
        "seed": int(seed),
        "truncation": float(truncation),
        "attributes": list(extractor.attributes),
        "latent_size": latent_space.size,
        "latents": "sample i = tlgan.latents.sample_latent(seed + i, latent_size, truncation)",
        "method": "render with generator, label with extractor.forward_tensor",
    }
    if space != "z" or not latent_space.is_standard:
        meta["latent_space"] = space
        meta["latents"] = ("sample i = FaceGenerator.sample_latents([seed + i], truncation, "
                           "latent_space)")
    writer = SampleCacheWriter(out, meta, total_n=n, chunk=chunk,
                               on_mismatch="restart" if restart else "error")
    pending = writer.pending_chunks()
    with progress_bar(total=n, initial=writer.n_done, desc="sample+label", unit="face",
                      enabled=progress) as bar:
        for i in pending:
            start, stop = writer.chunk_range(i)
            z = generator.sample_latents(range(seed + start, seed + stop), truncation, space)
            probs, emb = render_and_embed(generator, extractor, z, batch, space)
            writer.write_chunk(i, z, probs, emb)
            bar.update(stop - start)
    return writer.finalize()
