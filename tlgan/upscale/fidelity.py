"""Image fidelity: PSNR and SSIM of uint8 images against their references, per image."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def _check_pair(images: np.ndarray, reference: np.ndarray) -> None:
    if images.shape != reference.shape or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images: expected the reference's shape (N, H, W, 3) "
                         f"{reference.shape}, got {images.shape}")


def psnr(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """PSNR in dB of each uint8 image (N, H, W, 3) against its reference (all channels;
    capped at 100 dB for identical images)."""
    _check_pair(images, reference)
    diff = images.astype(np.float64) - reference.astype(np.float64)
    mse = (diff ** 2).reshape(len(images), -1).mean(1)
    return np.minimum(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-12)), 100.0)


def ssim(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """SSIM of each uint8 image (N, H, W, 3) against its reference: the usual 11x11
    Gaussian window (sigma 1.5, applied separably), K1 0.01, K2 0.03, on each RGB channel,
    averaged (computed on [0, 1] values in float32)."""
    _check_pair(images, reference)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(np.ascontiguousarray(reference)).permute(0, 3, 1, 2).float() / 255
    t = torch.arange(11, dtype=torch.float32) - 5
    g = torch.exp(-0.5 * (t / 1.5) ** 2)
    g = g / g.sum()
    across, down = g.view(1, 1, 1, 11).repeat(3, 1, 1, 1), g.view(1, 1, 11, 1).repeat(3, 1, 1, 1)

    def blur(a: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(a, across, groups=3), down, groups=3)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    with torch.inference_mode():
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
        return s.flatten(1).mean(1).double().numpy()
