"""Training inputs for the upscaler: real crops made to look like the generator's output.

A high-resolution crop is area-downscaled by the network's scale (the generator was trained
on box-downscaled crops of the same subset), then degraded at random the way the default
generator's 64 px faces differ from those downscaled crops. Measured on 256 generated faces
against 256 box-downscaled partition-1 crops (luminance statistics): the faces are slightly
softer (mean |Laplacian| 0.086 against 0.095, like a Gaussian blur of sigma about 0.25),
carry more energy at the Nyquist frequency (0.63 against 0.56 per mille: the transposed
convolutions' checkerboard and grain, like noise of sigma about 0.015) and are less
saturated (mean channel spread 0.158 against 0.178) with a slightly different mean colour
(``python -m bench.upscale --evidence`` prints these figures, and each degradation's).

So each degradation, drawn independently per image (:data:`DEGRADATIONS` records the
ranges):

- ``colour``: saturation scaled and channels shifted, applied to input AND target (the
  network must keep the colours it is given, not learn to correct them);
- ``blur``: Gaussian blur of the input;
- ``grid``: a faint zero-mean 2x2 pattern added to the input (the checkerboard of stride-2
  transposed convolutions);
- ``noise``: Gaussian noise on the input;
- ``jpeg``: JPEG compression of the input (blocking and ringing);

and the input is always quantized to 8 bits, as a rendered face is.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

#: each degradation: the probability it applies and its parameter range
DEGRADATIONS: dict[str, dict[str, Any]] = {
    "colour": {"p": 0.5, "saturation": [0.8, 1.05], "shift": 0.02, "on": "input and target"},
    "blur": {"p": 0.5, "sigma": [0.2, 0.6], "on": "input"},
    "grid": {"p": 0.3, "amplitude": [0.0, 0.015], "on": "input"},
    "noise": {"p": 0.5, "sigma": [0.0, 0.02], "on": "input"},
    "jpeg": {"p": 0.25, "quality": [60, 95], "on": "input"},
    "quantize": {"p": 1.0, "levels": 256, "on": "input"},
}


def downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Area (box) downscale of images (N, 3, H, W) by ``scale`` (H and W multiples of it)."""
    if hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise ValueError(f"hr: sides {tuple(hr.shape[-2:])} are not multiples of {scale}")
    return F.avg_pool2d(hr, scale)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[0]
    x = F.pad(x[None], (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)[0]


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    arr = (x.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=quality)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return torch.from_numpy(out.copy()).permute(2, 0, 1).float() / 255.0


def _uniform(rng: np.random.Generator, bounds: list[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def make_pair(hr: torch.Tensor, scale: int, rng: np.random.Generator
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """A training pair from high-resolution crops (N, 3, H, W) in [0, 1] (CPU): the degraded
    low-resolution input (N, 3, H/scale, W/scale), quantized to 8 bits, and the target
    (the crops, colour-shifted like the input where that degradation was drawn)."""
    d = DEGRADATIONS
    hr = hr.clone()
    lr = downscale(hr, scale)
    for i in range(len(hr)):
        if rng.random() < d["colour"]["p"]:
            sat = _uniform(rng, d["colour"]["saturation"])
            shift = torch.from_numpy(rng.uniform(-1, 1, 3) * d["colour"]["shift"]).float()
            for t in (hr, lr):
                grey = t[i].mean(0, keepdim=True)
                t[i] = (grey + sat * (t[i] - grey) + shift[:, None, None]).clamp(0, 1)
        x = lr[i]
        if rng.random() < d["blur"]["p"]:
            x = _blur(x, _uniform(rng, d["blur"]["sigma"]))
        if rng.random() < d["grid"]["p"]:
            pattern = torch.from_numpy(rng.normal(0, 1, (3, 2, 2))).float()
            pattern = pattern - pattern.mean((1, 2), keepdim=True)
            pattern = pattern / pattern.abs().amax().clamp_min(1e-6)
            h, w = x.shape[-2:]
            tiled = pattern.repeat(1, (h + 1) // 2, (w + 1) // 2)[:, :h, :w]
            x = x + _uniform(rng, d["grid"]["amplitude"]) * tiled
        if rng.random() < d["noise"]["p"]:
            sigma = _uniform(rng, d["noise"]["sigma"])
            x = x + sigma * torch.from_numpy(rng.standard_normal(x.shape)).float()
        if rng.random() < d["jpeg"]["p"]:
            q = d["jpeg"]["quality"]
            x = _jpeg(x, int(rng.integers(q[0], q[1] + 1)))
        lr[i] = (x.clamp(0, 1) * 255).round() / 255
    return lr, hr
