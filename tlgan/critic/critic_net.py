"""The critic network: the training discriminator's ``dcgan`` shape, narrow and spectrally
normalised, reading float images in [0, 1] and returning one realism logit per image.

Four 4x4 stride-2 convolutions (64 -> 32 -> 16 -> 8 -> 4 px) and a 4x4 one to a logit, with
spectral normalisation on every convolution (a bounded Lipschitz constant keeps its gradient
smooth for the code that follows it). At the default width (32) it has 0.69 M parameters and
costs about 4 ms for one 64 px face on one CPU thread, a small fraction of the render.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from tlgan.training.networks import D_ARCHS, D_NORMS, Discriminator

ARCHITECTURE = "dcgan-d-v1"
#: a critic weights folder: its kind in config.json, and its weights file
KIND = "critic-weights"
WEIGHTS_FILE = "critic.safetensors"


@dataclass(frozen=True)
class CriticConfig:
    """The critic's shape.

    Attributes:
        resolution: input height = width (the generator's output resolution; 64).
        width: channels of the first convolution (doubled at each of the next three).
        arch: :class:`tlgan.training.networks.Discriminator` architecture.
        norm: its normalisation (``spectral``, ``batch`` or ``none``).
    """

    resolution: int = 64
    width: int = 32
    arch: str = "dcgan"
    norm: str = "spectral"

    def __post_init__(self) -> None:
        if self.resolution != 64:
            raise ValueError(f"resolution: the critic reads 64 px faces, got {self.resolution}")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width: must be a positive integer, got {self.width!r}")
        if self.arch not in D_ARCHS:
            raise ValueError(f"arch: must be one of {', '.join(D_ARCHS)}, got {self.arch!r}")
        if self.norm not in D_NORMS:
            raise ValueError(f"norm: must be one of {', '.join(D_NORMS)}, got {self.norm!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CriticConfig:
        return cls(resolution=int(d["resolution"]), width=int(d["width"]), arch=str(d["arch"]),
                   norm=str(d["norm"]))


class CriticNet(nn.Module):
    """Images (N, 3, R, R) in [0, 1] -> realism logits (N,)."""

    def __init__(self, cfg: CriticConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or CriticConfig()
        self.body = Discriminator(ndf=self.cfg.width, arch=self.cfg.arch, norm=self.cfg.norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.cfg.resolution
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != r or x.shape[3] != r:
            raise ValueError(f"images: expected (N, 3, {r}, {r}) in [0, 1], got {tuple(x.shape)}")
        return self.forward_signed(x * 2.0 - 1.0)

    def forward_signed(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of images already in [-1, 1] (training augments in that range)."""
        out: torch.Tensor = self.body(x)
        return out
