"""The encoder network: a face image -> a latent z of the generator it was trained for.

A small residual CNN: a 3x3 stem at the input resolution, one stride-2 residual stage per
width (64 -> 32 -> 16 -> 8 -> 4 for the default four widths), then the 4x4 feature map is
flattened (so where things are in the face survives, unlike a global pool) and one linear
layer gives z. About 1.7 M parameters at the default widths.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

ARCHITECTURE = "resnet-flat-v1"
#: an encoder weights folder: its kind in config.json, and its weights file
KIND = "encoder-weights"
WEIGHTS_FILE = "encoder.safetensors"


@dataclass(frozen=True)
class EncoderConfig:
    """The encoder's shape.

    Attributes:
        latent_size: length of z (the generator's).
        resolution: input height = width (the generator's output resolution).
        widths: channels of each stride-2 stage; the last stage's map is
            ``resolution / 2**len(widths)`` pixels square.
    """

    latent_size: int = 100
    resolution: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 256)

    def __post_init__(self) -> None:
        if self.latent_size < 1:
            raise ValueError(f"latent_size: must be >= 1, got {self.latent_size}")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths: must be positive channel counts, got {self.widths}")
        side = self.resolution >> len(self.widths)
        if side < 1 or side << len(self.widths) != self.resolution:
            raise ValueError(f"resolution: {self.resolution} is not divisible by "
                             f"2**{len(self.widths)} (one halving per width)")

    @property
    def final_side(self) -> int:
        return self.resolution >> len(self.widths)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderConfig:
        return cls(latent_size=int(d["latent_size"]), resolution=int(d["resolution"]),
                   widths=tuple(int(w) for w in d["widths"]))


class _Down(nn.Module):
    """A residual block that halves the resolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.skip = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(cin, cout, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.act = nn.ReLU(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.act(self.body(x) + self.skip(x))
        return out


class ImageEncoder(nn.Module):
    """Images (N, 3, R, R) in [0, 1] -> latents (N, latent_size)."""

    def __init__(self, cfg: EncoderConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or EncoderConfig()
        w0 = self.cfg.widths[0]
        layers: list[nn.Module] = [nn.Conv2d(3, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0),
                                   nn.ReLU(True)]
        cin = w0
        for w in self.cfg.widths:
            layers.append(_Down(cin, w))
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin * self.cfg.final_side ** 2, self.cfg.latent_size)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.head.weight, std=0.5 / (self.head.in_features ** 0.5))
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.cfg.resolution
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != r or x.shape[3] != r:
            raise ValueError(f"images: expected (N, 3, {r}, {r}) in [0, 1], got {tuple(x.shape)}")
        out: torch.Tensor = self.head(self.features(x * 2.0 - 1.0).flatten(1))
        return out


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
