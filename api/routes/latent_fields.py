"""Latents in requests and answers: parsed from a field, and kept in the range requests
may use."""

from __future__ import annotations

import numpy as np

from api.schemas import BOUND
from tlgan.latents import parse_latent
from tlgan.photos.adapter import Adapter, decode_adapter
from tlgan.pipeline import Pipeline


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


def adapter(text: str | None, pipeline: Pipeline) -> Adapter | None:
    """A request's photo adapter, checked for the pipeline's generator (None: none sent), or
    ValueError naming ``adapter`` (also where latents are not the generator's z, which
    adapters render)."""
    if text is None:
        return None
    if pipeline.latent_space != "z":
        raise ValueError(f"adapter: adapters render latents in z; this service's live in "
                         f"{pipeline.latent_space!r}")
    return decode_adapter(text, pipeline.generator)
