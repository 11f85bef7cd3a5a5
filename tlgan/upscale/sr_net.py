"""The super-resolution network: a face image -> the same face at ``scale`` times the pixels.

A small residual CNN at the input resolution (3x3 stem, ``blocks`` residual blocks of two
3x3 convolutions, a 3x3 fuse with a long skip), then one 3x3 convolution to
``3 * scale**2`` channels and a PixelShuffle. It predicts a residual over a fixed bicubic
upsample of the input, so an untrained network is plain bicubic and training only has to
learn the detail. About 0.13 M parameters at the defaults (32 channels, 6 blocks); fully
convolutional, so any input size works.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

ARCHITECTURE = "residual-pixelshuffle-v1"
#: an upscaler weights folder: its kind in config.json, and its weights file
KIND = "upscaler-weights"
WEIGHTS_FILE = "upscaler.safetensors"


@dataclass(frozen=True)
class SRConfig:
    """The network's shape.

    Attributes:
        scale: the upscaling factor (2: 64 -> 128 px).
        channels: feature channels of every convolution.
        blocks: residual blocks at the input resolution.
    """

    scale: int = 2
    channels: int = 32
    blocks: int = 6

    def __post_init__(self) -> None:
        for name in ("scale", "channels", "blocks"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be a positive integer, got {v!r}")
        if self.scale not in (2, 3, 4):
            raise ValueError(f"scale: must be 2, 3 or 4, got {self.scale}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SRConfig:
        return cls(scale=int(d["scale"]), channels=int(d["channels"]), blocks=int(d["blocks"]))


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SRNet(nn.Module):
    """Images (N, 3, H, W) in [0, 1] -> (N, 3, scale*H, scale*W), not clamped."""

    def __init__(self, cfg: SRConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SRConfig()
        c = cfg.channels
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.body = nn.Sequential(*(_Block(c) for _ in range(cfg.blocks)))
        self.fuse = nn.Conv2d(c, c, 3, padding=1)
        self.to_pixels = nn.Conv2d(c, 3 * cfg.scale ** 2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(cfg.scale)
        for param in self.to_pixels.parameters():  # starts as plain bicubic
            nn.init.zeros_(param)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.cfg.scale, mode="bicubic",
                             align_corners=False)
        h = self.stem(x - 0.5)
        h = h + self.fuse(self.body(h))
        return base + self.shuffle(self.to_pixels(h))


def count_parameters(module: nn.Module) -> int:
    """The number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())
