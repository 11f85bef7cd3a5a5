"""Real faces broken on purpose: the kinds of damage a generator does to a face (a warped
geometry, a smeared or melted region), made from real crops so that a critic learns them as
unrealistic without ever seeing a label of the generator's own faces.

Two kinds, half of the batch each: a smooth warp of the whole face (a random 4x4 displacement
field, bicubically upsampled, up to ``warp_px`` pixels), and a local melt (inside a random
ellipse near the face's centre, a strong warp blended with a heavy blur). Images are float
(N, 3, H, W) in [-1, 1]; all randomness comes from the ``generator`` passed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _rand(x: torch.Tensor, g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=g, device=x.device, dtype=torch.float32)


def _warp(x: torch.Tensor, g: torch.Generator, px: torch.Tensor) -> torch.Tensor:
    """Displace each image by a smooth random field of up to ``px`` (N,) pixels."""
    n, _, h, w = x.shape
    field = (_rand(x, g, n, 2, 4, 4) * 2 - 1) * px.view(n, 1, 1, 1) * (2.0 / w)
    field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=True)
    ys = torch.linspace(-1, 1, h, device=x.device)
    xs = torch.linspace(-1, 1, w, device=x.device)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).expand(n, h, w, 2)
    return F.grid_sample(x, base + field.permute(0, 2, 3, 1), mode="bilinear",
                         padding_mode="border", align_corners=True)


def _ellipse(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A soft random ellipse (N, 1, H, W) in [0, 1] near the centre of each image."""
    n, _, h, w = x.shape
    cy = h * (0.35 + 0.3 * _rand(x, g, n, 1, 1))
    cx = w * (0.35 + 0.3 * _rand(x, g, n, 1, 1))
    ry = h * (0.12 + 0.13 * _rand(x, g, n, 1, 1))
    rx = w * (0.12 + 0.13 * _rand(x, g, n, 1, 1))
    ys = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
    d = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2
    return (1.5 - d).clamp(0, 1).unsqueeze(1)


def break_faces(x: torch.Tensor, g: torch.Generator, warp_px: float = 6.0) -> torch.Tensor:
    """``x`` with every image damaged: the first half warped, the second half melted.

    Raises:
        ValueError: ``x`` is not a batch of images (named ``images``).
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"images: expected (N, 3, H, W), got {tuple(x.shape)}")
    n = x.shape[0]
    half = n // 2
    px = warp_px * (0.5 + 0.5 * _rand(x, g, n))
    warped = _warp(x, g, px)
    melted = _warp(x, g, px * 2.5)
    blurred = F.avg_pool2d(F.avg_pool2d(melted, 7, 1, 3, count_include_pad=False), 7, 1, 3,
                           count_include_pad=False)
    mask = _ellipse(x, g)
    melted = melted * (1 - mask) + blurred * mask
    local = x * (1 - mask) + melted * mask
    return torch.cat([warped[:half], local[half:]])
