"""Tensor transforms of face batches: training augmentation (:func:`augment_batch`), the
uint8 -> float layout change, channel statistics and the square resize the model applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Training augmentation (batched, on tensors).

    Attributes:
        flip: probability of a horizontal flip.
        zoom: (min, max) zoom-in factor; 1.5 shows the central 1/1.5 of the image.
        zoom_p: probability that an image is zoomed (otherwise it keeps the full frame, the
            framing of plain inference).
        shift: largest random shift of the zoomed window, as a fraction of the margin left.
        brightness / contrast / saturation: jitter amplitude (factor drawn in 1 +- a).
    """

    flip: float = 0.5
    zoom: tuple[float, float] = (1.0, 1.5)
    zoom_p: float = 0.5
    shift: float = 0.5
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.15

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (recorded in the weights' config)."""
        return {"flip": self.flip, "zoom": list(self.zoom), "zoom_p": self.zoom_p,
                "shift": self.shift,
                "brightness": self.brightness, "contrast": self.contrast,
                "saturation": self.saturation}


def augment_batch(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Augment a float (N, 3, H, W) batch in [0, 1]: zoom/shift, flip, colour jitter.

    Every random draw comes from ``generator`` (on the CPU) so a seed fixes the result.
    """
    n = x.shape[0]
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(dev)

    lo, hi = aug.zoom
    zoom = lo + (hi - lo) * rand(n)
    zoom = torch.where(rand(n) < aug.zoom_p, zoom, torch.ones_like(zoom))
    scale = 1.0 / zoom  # window size relative to the image
    flip = rand(n) < aug.flip
    margin = (1.0 - scale) * aug.shift
    tx = (rand(n) * 2 - 1) * margin
    ty = (rand(n) * 2 - 1) * margin
    sx = torch.where(flip, -scale, scale)
    if hi > 1.0 or lo != 1.0:
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0] = sx
        theta[:, 0, 2] = tx
        theta[:, 1, 1] = scale
        theta[:, 1, 2] = ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    elif aug.flip > 0:
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if aug.brightness > 0:
        b = 1 + (rand(n) * 2 - 1) * aug.brightness
        x = x * b[:, None, None, None]
    if aug.contrast > 0:
        c = 1 + (rand(n) * 2 - 1) * aug.contrast
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * c[:, None, None, None] + mean
    if aug.saturation > 0:
        s = 1 + (rand(n) * 2 - 1) * aug.saturation
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
        x = (x - gray) * s[:, None, None, None] + gray
    return x.clamp_(0.0, 1.0)


def channel_stats(images: np.ndarray, max_images: int = 4096, seed: int = 0) -> tuple[
        list[float], list[float]]:
    """Per-channel mean and std (in [0, 1] units) of uint8 (N, H, W, 3) images."""
    rng = np.random.default_rng(seed)
    sel = images
    if len(images) > max_images:
        sel = images[np.sort(rng.choice(len(images), max_images, replace=False))]
    flat = sel.reshape(-1, 3).astype(np.float64) / 255.0
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    return [round(float(v), 6) for v in mean], [round(float(max(v, 1e-3)), 6) for v in std]


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop a float (N, C, H, W) batch to a square, then resize it to ``size``.

    Downscaling uses antialiased bilinear filtering (matching PIL's), upscaling bilinear.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        x = x[..., top:top + s, left:left + s]
        h = w = s
    if h == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=h > size)
