"""The inversion losses, shared by encoder training and refinement.

For latents z and target photos x (float, (N, 3, R, R) in [0, 1]) the per-photo terms are:

- ``pixel``: the mean squared error between G(z) and x (PSNR = -10 log10 of it);
- ``perceptual``: 1 - cosine between the extractor's embeddings of G(z) and of x (the
  extractor's 40 labels are a linear head on that embedding, so matching it matches them);
- ``shell``: (|z| / sqrt(L) - 1)^2, which keeps z near the Gaussian shell where the
  generator's training latents lie (|z| ~ sqrt(L) for z ~ N(0, I)).

The total is ``pixel + perceptual_weight * perceptual + shell_weight * shell``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn


class Embedder(Protocol):
    """What the perceptual term needs of an extractor (``feature_extractor.model.Extractor``)."""

    def forward_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class LossWeights:
    """Weights of the perceptual and shell terms against the pixel MSE (weight 1)."""

    perceptual: float = 0.05
    shell: float = 0.1

    def __post_init__(self) -> None:
        for name in ("perceptual", "shell"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name}_weight: must be a finite number >= 0, got {v}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def shell_penalty(z: torch.Tensor) -> torch.Tensor:
    """(N,) squared distance of |z| / sqrt(L) from 1."""
    if z.dim() != 2:
        raise ValueError(f"z: expected (N, L), got {tuple(z.shape)}")
    return (z.norm(dim=1) / math.sqrt(z.shape[1]) - 1.0) ** 2


def pixel_mse(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N,) mean squared error per image."""
    if x.shape != target.shape:
        raise ValueError(f"target: shape {tuple(target.shape)} differs from the rendering's "
                         f"{tuple(x.shape)}")
    return ((x - target) ** 2).flatten(1).mean(1)


def embedding_distance(emb: torch.Tensor, target_emb: torch.Tensor) -> torch.Tensor:
    """(N,) 1 - cosine similarity."""
    return 1.0 - F.cosine_similarity(emb, target_emb, dim=1)


def psnr(mse: torch.Tensor | float) -> torch.Tensor | float:
    """PSNR in dB of images in [0, 1] from their mean squared error."""
    if isinstance(mse, torch.Tensor):
        return -10.0 * torch.log10(mse.clamp_min(1e-10))
    return -10.0 * math.log10(max(mse, 1e-10))


class InversionLoss:
    """Renders latents differentiably and scores them against target photos.

    Args:
        module: the generator's z -> image module (output in ``value_range``), frozen.
        extractor: gives embeddings (``forward_tensor``), frozen; None drops the term.
        weights: the terms' weights.
        value_range: the module's output range.
        spatial_latent: the module wants z as (N, L, 1, 1).
    """

    def __init__(self, module: nn.Module, extractor: Embedder | None,
                 weights: LossWeights | None = None,
                 value_range: tuple[float, float] = (-1.0, 1.0),
                 spatial_latent: bool = False) -> None:
        self.module = module
        self.extractor = extractor
        self.weights = weights or LossWeights()
        self.lo, self.hi = value_range
        self.spatial = spatial_latent

    def render(self, z: torch.Tensor) -> torch.Tensor:
        """(N, L) -> images (N, 3, R, R) in [0, 1], differentiable in z (not clamped)."""
        out: torch.Tensor = self.module(z[:, :, None, None] if self.spatial else z)
        return (out - self.lo) / (self.hi - self.lo)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        assert self.extractor is not None
        return self.extractor.forward_tensor(x)[1]

    def terms(self, z: torch.Tensor, target: torch.Tensor,
              target_emb: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Per-photo terms and ``total`` (each (N,)), plus ``image`` (the rendering)."""
        x = self.render(z)
        out = {"image": x, "pixel": pixel_mse(x, target), "shell": shell_penalty(z)}
        total = out["pixel"] + self.weights.shell * out["shell"]
        if self.extractor is not None and target_emb is not None \
                and self.weights.perceptual > 0:
            out["perceptual"] = embedding_distance(self.embed(x), target_emb)
            total = total + self.weights.perceptual * out["perceptual"]
        out["total"] = total
        return out
