"""Tiny seeded models for fast tests (generator, extractor, axes), shared by all test suites.

These are real (randomly initialised, seeded) torch modules wired through the same classes as
production; only their size differs. Nothing here is imported by production code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from tlgan.generators.base import FaceGenerator
from tlgan.generators.dcgan import DCGANGenerator
from tlgan.pipeline import Pipeline

TINY_ATTRIBUTES = ["Eyeglasses", "Male", "Smiling", "Young", "Blond_Hair"]
TINY_LATENT = 16


def tiny_generator(seed: int = 0, latent_size: int = TINY_LATENT, max_batch: int = 64
                   ) -> FaceGenerator:
    """A seeded random DCGAN (64x64) small enough to render thousands of faces per second."""
    torch.manual_seed(seed)
    module = DCGANGenerator(nz=latent_size, ngf=4)
    # Randomise BatchNorm statistics so outputs are not flat.
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.25)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return FaceGenerator(module=module, name="tiny-dcgan", latent_size=latent_size,
                         resolution=64, sha256="0" * 64, max_batch=max_batch)


class _TinyNet(nn.Module):
    def __init__(self, n_out: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.head = nn.Linear(64, n_out)
        nn.init.normal_(self.head.weight, 0.0, 1.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.features(x)
        return self.head(emb), emb


@dataclass
class TinyExtractor:
    """A seeded random CNN with the extractor contract (forward_tensor -> probs, emb)."""

    attributes: list[str] = field(default_factory=lambda: list(TINY_ATTRIBUTES))
    seed: int = 0
    name: str = "tiny-extractor"
    sha256: str = "1" * 64

    def __post_init__(self) -> None:
        torch.manual_seed(self.seed)
        self.net = _TinyNet(len(self.attributes)).eval()
        self.input_size = 32
        self.embedding_size = 64
        self.mu = torch.zeros(len(self.attributes))
        self.sd = torch.ones(len(self.attributes))

    def forward_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            x = nn.functional.interpolate(x.float().cpu(), size=(32, 32), mode="area")
            logits, emb = self.net(x * 2 - 1)
            return torch.sigmoid((logits - self.mu) / self.sd * 2.0), emb

    def calibrate(self, images: torch.Tensor) -> None:
        """Centre and scale the logits on a batch of faces so probabilities spread out."""
        with torch.inference_mode():
            x = nn.functional.interpolate(images.float().cpu(), size=(32, 32), mode="area")
            logits, _ = self.net(x * 2 - 1)
        self.mu = logits.mean(0)
        self.sd = logits.std(0).clamp_min(1e-6)


@dataclass
class TinyBundle:
    """Random orthonormal-ish unit axes, one per tiny attribute; Male and Young are references."""

    names: list[str]
    directions: np.ndarray
    references: list[str]
    id: str = "tiny-bundle"


def tiny_bundle(latent_size: int = TINY_LATENT, seed: int = 0) -> TinyBundle:
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((len(TINY_ATTRIBUTES), latent_size))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return TinyBundle(list(TINY_ATTRIBUTES), d.astype(np.float32), ["Male", "Young"])


def tiny_pipeline(seed: int = 0) -> Pipeline:
    """A full pipeline of tiny seeded models."""
    gen = tiny_generator(seed)
    ext = TinyExtractor(seed=seed)
    rng = np.random.default_rng(seed + 1)
    ext.calibrate(gen.render_tensor(rng.standard_normal((128, gen.latent_size)).astype(np.float32)))
    return Pipeline(generator=gen, extractor=ext, bundle=tiny_bundle(seed=seed))
