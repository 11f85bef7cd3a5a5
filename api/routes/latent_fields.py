"""Latents in requests and answers: parsed from a field, and kept in the range requests
may use."""

from __future__ import annotations

import numpy as np

from api.schemas import BOUND
from tlgan.latents import parse_latent
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
