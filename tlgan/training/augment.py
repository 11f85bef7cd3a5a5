"""Differentiable batch augmentations applied to real and fake images before D.

In the spirit of DiffAugment (Zhao et al. 2020): the same random policy is applied to real and
generated batches, and gradients flow through it to G, so D cannot overfit a small training
set without G learning the augmentations. Policies: ``translation`` (shift by up to 1/8 of the
side, zero padding), ``color`` (brightness, saturation, contrast), ``cutout`` (a zeroed square
of half the side). Images are in [-1, 1]. All randomness comes from the ``generator`` passed
in, so runs resume exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tlgan_base.devices import memory_format

POLICIES = ("translation", "color", "cutout")


def parse_policy(spec: str) -> tuple[str, ...]:
    """``"translation,color"`` -> ("translation", "color"); ``"none"`` or ``""`` -> ()."""
    spec = spec.strip().lower()
    if spec in ("", "none"):
        return ()
    parts = tuple(p.strip() for p in spec.split(",") if p.strip())
    for p in parts:
        if p not in POLICIES:
            raise ValueError(
                f"augment: unknown policy {p!r}; use a comma list of {', '.join(POLICIES)} or none"
            )
    return parts


def _rand(x: torch.Tensor, g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=g, device=x.device, dtype=torch.float32).to(x.dtype)


def translate(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), generator=g, device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=g, device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + sh - ty).expand(n, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + sw - tx).expand(n, h, w)
    padded = F.pad(x, (sw, sw, sh, sh))
    batch = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def color(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    x = x + (_rand(x, g, n, 1, 1, 1) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, g, n, 1, 1, 1) * 2.0) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, g, n, 1, 1, 1) + 0.5) + mean  # contrast


def cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    y0 = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=g, device=x.device) - ch // 2
    x0 = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=g, device=x.device) - cw // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def augment(x: torch.Tensor, policy: tuple[str, ...], g: torch.Generator) -> torch.Tensor:
    """Apply ``policy`` (in the order color, translation, cutout) to a batch."""
    if "color" in policy:
        x = color(x, g)
    if "translation" in policy:
        x = translate(x, g)
    if "cutout" in policy:
        x = cutout(x, g)
    return x.contiguous(memory_format=memory_format(x.device))
