"""The generator interface: latents in, uint8 faces out, batched, on a device passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass
class FaceGenerator:
    """A face generator ready to render: a torch module plus what we know about it.

    Attributes:
        module: maps z (N, latent_size) -> images (N, 3, resolution, resolution) in
            ``value_range``. Modules that want (N, L, 1, 1) get it when ``spatial_latent``.
        name: registry name or plug-in name.
        latent_size: length of z.
        resolution: output height = width in pixels.
        value_range: the (low, high) range of the module's output.
        sha256: checksum of the weights file it was built from.
        device: where the module lives.
        max_batch: the largest batch given to the module at once.
    """

    module: nn.Module
    name: str
    latent_size: int
    resolution: int
    value_range: tuple[float, float] = (-1.0, 1.0)
    sha256: str = ""
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    max_batch: int = 256
    spatial_latent: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        self.module = self.module.to(self.device).eval()

    def check_latents(self, z: np.ndarray | torch.Tensor, name: str = "z") -> None:
        """Raise ValueError (naming ``name``) unless z is (N, latent_size) and finite."""
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise ValueError(
                f"{name}: expected shape (N, {self.latent_size}), got {tuple(z.shape)}"
            )
        if isinstance(z, torch.Tensor):
            finite = bool(torch.isfinite(z).all().item())
        else:
            finite = bool(np.isfinite(z).all())
        if not finite:
            raise ValueError(f"{name}: contains NaN or infinity")

    def render_tensor(self, z: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Render latents to float images (N, 3, H, W) in [0, 1], on ``self.device``."""
        self.check_latents(z)
        zt = torch.as_tensor(z, dtype=torch.float32).to(self.device)
        lo, hi = self.value_range
        outs = []
        with torch.inference_mode():
            for start in range(0, zt.shape[0], self.max_batch):
                chunk = zt[start : start + self.max_batch]
                if self.spatial_latent:
                    chunk = chunk[:, :, None, None]
                x = self.module(chunk)
                outs.append(((x - lo) / (hi - lo)).clamp_(0.0, 1.0))
            if not outs:
                r = self.resolution
                return torch.empty((0, 3, r, r), device=self.device)
            return torch.cat(outs) if len(outs) > 1 else outs[0]

    def render(self, z: torch.Tensor | np.ndarray) -> np.ndarray:
        """Render latents to uint8 images (N, H, W, 3) on the CPU."""
        return to_uint8(self.render_tensor(z))

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for ``tlgan info`` and ``GET /generators``)."""
        return {
            "name": self.name,
            "latent_size": self.latent_size,
            "resolution": self.resolution,
            "value_range": list(self.value_range),
            "sha256": self.sha256,
            "device": str(self.device),
            **self.metadata,
        }


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float images (N, 3, H, W) in [0, 1] -> uint8 (N, H, W, 3) numpy, rounded."""
    with torch.inference_mode():
        u8 = (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        return u8.permute(0, 2, 3, 1).contiguous().cpu().numpy()
