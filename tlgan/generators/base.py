"""The generator interface: latents in, uint8 faces out, batched, on a device passed in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from tlgan.latents import (
    DEFAULT_SPACE,
    LatentSpace,
    candidate_latents,
    sample_latents,
    truncate,
)

#: the space a mapping network's output lives in
MAPPED_SPACE = "w"
#: seeds whose mapped latents estimate the mean of ``w`` when none is declared
W_MEAN_SEEDS = range(0, 4096)


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
        prior: the prior of z (a :class:`LatentSpace` named "z" of size ``latent_size``);
            None: standard normal. Autoencoder/VAE decoders declare their latent mean and
            covariance here, so seeded latents follow it.
        mapping: optional mapping network z (N, latent_size) -> w (N, w_size)
            (StyleGAN-like); with ``synthesis`` (w -> images in ``value_range``) it declares
            the latent space "w". ``module`` stays the z -> images path.
        w_mean: the mean of w (truncation and slerp centre on it); None: the mean of the
            mapped latents of seeds ``W_MEAN_SEEDS``, computed once on first use.
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
    prior: LatentSpace | None = None
    mapping: nn.Module | None = None
    synthesis: nn.Module | None = None
    w_size: int | None = None
    w_mean: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.prior is not None and (self.prior.name != DEFAULT_SPACE
                                       or self.prior.size != self.latent_size):
            raise ValueError(f"prior: must be a latent space named {DEFAULT_SPACE!r} of size "
                             f"{self.latent_size}, got {self.prior.name!r} of size "
                             f"{self.prior.size}")
        if (self.mapping is None) != (self.synthesis is None) or (
                (self.mapping is None) != (self.w_size is None)):
            raise ValueError("mapping: a w space needs mapping, synthesis and w_size together")
        self._w_space: LatentSpace | None = None
        if self.w_mean is not None:
            assert self.w_size is not None
            self._w_space = LatentSpace(MAPPED_SPACE, self.w_size, mean=self.w_mean)
        self.module = self.module.to(self.device).eval()
        if self.mapping is not None and self.synthesis is not None:
            self.mapping = self.mapping.to(self.device).eval()
            self.synthesis = self.synthesis.to(self.device).eval()

    # -- latent spaces -------------------------------------------------------------------
    @property
    def latent_space(self) -> LatentSpace:
        """The space z the generator takes: its declared prior, or standard normal."""
        return self.prior if self.prior is not None else LatentSpace(DEFAULT_SPACE,
                                                                     self.latent_size)

    @property
    def space_names(self) -> tuple[str, ...]:
        """The names of the latent spaces this generator renders from ("z" first)."""
        return (DEFAULT_SPACE, MAPPED_SPACE) if self.mapping is not None else (DEFAULT_SPACE,)

    def space_sizes(self) -> dict[str, int]:
        """{space name: latent size} of every declared space (no mean is computed)."""
        sizes = {DEFAULT_SPACE: self.latent_size}
        if self.w_size is not None:
            sizes[MAPPED_SPACE] = self.w_size
        return sizes

    def space(self, name: str = DEFAULT_SPACE) -> LatentSpace:
        """The declared latent space ``name``, or ValueError naming it and the valid ones."""
        if name == DEFAULT_SPACE:
            return self.latent_space
        if name == MAPPED_SPACE and self.mapping is not None:
            if self._w_space is None:
                assert self.w_size is not None
                z = sample_latents(W_MEAN_SEEDS, self.latent_space)
                mean = self._map(z).astype(np.float64).mean(axis=0)
                self._w_space = LatentSpace(MAPPED_SPACE, self.w_size, mean=mean)
            return self._w_space
        raise ValueError(f"latent_space: generator {self.name!r} has no latent space "
                         f"{name!r} (it has: {', '.join(self.space_names)})")

    def _map(self, z: np.ndarray) -> np.ndarray:
        """z (N, latent_size) -> w (N, w_size) float32 through the mapping network."""
        assert self.mapping is not None
        self.check_latents(z)
        zt = torch.as_tensor(z, dtype=torch.float32).to(self.device)
        outs = []
        with torch.inference_mode():
            for start in range(0, zt.shape[0], self.max_batch):
                outs.append(self.mapping(zt[start : start + self.max_batch]).float().cpu())
        if not outs:
            return np.zeros((0, self.w_size or 0), np.float32)
        return torch.cat(outs).numpy().astype(np.float32)

    def to_space(self, z: np.ndarray, space: str = DEFAULT_SPACE) -> np.ndarray:
        """z latents (N, latent_size) expressed in ``space``: unchanged for "z", mapped for
        "w". Returns float32 (N, L_space)."""
        sp = self.space(space)
        if sp.name == DEFAULT_SPACE:
            self.check_latents(z)
            return np.asarray(z, dtype=np.float32)
        return self._map(z)

    def sample_latents(self, seeds: Iterable[int], truncation: float = 1.0,
                       space: str = DEFAULT_SPACE) -> np.ndarray:
        """Seeded latents (N, L) of ``space``: the z prior's (``tlgan.latents``); in "w" the
        mapped z of each seed (psi 1), truncated toward the mean of w."""
        if space == DEFAULT_SPACE:
            return sample_latents(seeds, self.latent_space, truncation)
        sp = self.space(space)
        z = sample_latents(seeds, self.latent_space)
        return truncate(self.to_space(z, space), truncation, sp)

    def candidate_latents(self, seed: int, count: int, truncation: float = 1.0,
                          space: str = DEFAULT_SPACE) -> np.ndarray:
        """``tlgan.latents.candidate_latents`` in ``space`` (see :meth:`sample_latents`)."""
        if space == DEFAULT_SPACE:
            return candidate_latents(seed, count, self.latent_space, truncation)
        sp = self.space(space)
        z = candidate_latents(seed, count, self.latent_space)
        return truncate(self.to_space(z, space), truncation, sp)

    def check_latents(self, z: np.ndarray | torch.Tensor, name: str = "z",
                      space: str = DEFAULT_SPACE) -> None:
        """Raise ValueError (naming ``name``) unless z is (N, L) and finite, L the size of
        ``space``."""
        size = self.space_sizes().get(space)
        if size is None:
            self.space(space)  # raises, naming the space
            return
        if z.ndim != 2 or z.shape[1] != size:
            raise ValueError(
                f"{name}: expected shape (N, {size}), got {tuple(z.shape)}"
            )
        if isinstance(z, torch.Tensor):
            finite = bool(torch.isfinite(z).all().item())
        else:
            finite = bool(np.isfinite(z).all())
        if not finite:
            raise ValueError(f"{name}: contains NaN or infinity")

    def _path(self, z: torch.Tensor | np.ndarray, space: str) -> tuple[nn.Module, bool]:
        """Check latents of ``space``; the module that renders them and whether it wants
        them as (N, L, 1, 1)."""
        self.check_latents(z, space=space)
        if space != DEFAULT_SPACE:
            assert self.synthesis is not None
            return self.synthesis, False
        return self.module, self.spatial_latent

    def render_tensor(self, z: torch.Tensor | np.ndarray,
                      space: str = DEFAULT_SPACE) -> torch.Tensor:
        """Render latents of ``space`` to float images (N, 3, H, W) in [0, 1], on
        ``self.device`` ("z": through ``module``; "w": through ``synthesis``)."""
        module, spatial = self._path(z, space)
        zt = torch.as_tensor(z, dtype=torch.float32).to(self.device)
        lo, hi = self.value_range
        outs = []
        with torch.inference_mode():
            for start in range(0, zt.shape[0], self.max_batch):
                chunk = zt[start : start + self.max_batch]
                if spatial:
                    chunk = chunk[:, :, None, None]
                x = module(chunk)
                outs.append(((x - lo) / (hi - lo)).clamp_(0.0, 1.0))
            if not outs:
                r = self.resolution
                return torch.empty((0, 3, r, r), device=self.device)
            return torch.cat(outs) if len(outs) > 1 else outs[0]

    def render_grad(self, z: torch.Tensor, space: str = DEFAULT_SPACE) -> torch.Tensor:
        """:meth:`render_tensor` that autograd follows: latents ``z`` (N, L) of ``space``, a
        float tensor on ``self.device``, to float images (N, 3, H, W) in [0, 1] with a graph
        back to ``z`` (one pass, no batching; the weights get no gradients unless they
        require them)."""
        module, spatial = self._path(z, space)
        x = module(z[:, :, None, None] if spatial else z)
        lo, hi = self.value_range
        return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)

    def render(self, z: torch.Tensor | np.ndarray, space: str = DEFAULT_SPACE) -> np.ndarray:
        """Render latents of ``space`` to uint8 images (N, H, W, 3) on the CPU."""
        return to_uint8(self.render_tensor(z, space))

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for ``tlgan info`` and ``GET /generators``); a
        generator with more than the standard-normal z lists its ``latent_spaces``."""
        out = {
            "name": self.name,
            "latent_size": self.latent_size,
            "resolution": self.resolution,
            "value_range": list(self.value_range),
            "sha256": self.sha256,
            "device": str(self.device),
            **self.metadata,
        }
        if self.prior is not None or self.mapping is not None:
            sizes = self.space_sizes()
            out["latent_spaces"] = [
                self.latent_space.describe(),
                *({"name": n, "size": s, "prior": "mapped z"} for n, s in sizes.items()
                  if n != DEFAULT_SPACE)]
        return out


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float images (N, 3, H, W) in [0, 1] -> uint8 (N, H, W, 3) numpy, rounded."""
    with torch.inference_mode():
        u8 = (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        return u8.permute(0, 2, 3, 1).contiguous().cpu().numpy()
