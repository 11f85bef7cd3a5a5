"""Refinement after the encoder: Adam on z, from several starting points, best kept.

For each photo the encoder's z and ``starts - 1`` seeded perturbations of it
(z + ``jitter`` * eps) are optimized together on the inversion loss
(:class:`~tlgan.encoders.losses.InversionLoss`). After ``ceil(steps * prune_at)`` steps only
the start with the lowest loss goes on (a round of successive halving: the spare starts buy
robustness early and cost nothing later). The z kept is the one with the lowest loss seen
at any step, so refinement never returns worse than its start.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tlgan.encoders import DEFAULT_STARTS
from tlgan.encoders.losses import InversionLoss
from tlgan_base.domain_errors import Stopped

#: Adam's learning rate on z (a z ~ N(0, I) in R^100 has entries of size ~1)
DEFAULT_LR = 0.05
DEFAULT_JITTER = 0.3
#: the fraction of the steps after which only the best start goes on
PRUNE_AT = 0.25


@dataclass
class Refined:
    """The best latents found and their per-photo loss terms (float tensors, (N,) each)."""

    z: torch.Tensor
    loss: torch.Tensor
    steps: int


def check_refine_args(steps: int, starts: int, lr: float, jitter: float) -> None:
    """Raise ValueError naming the bad argument."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: must be an integer >= 0, got {steps!r}")
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1:
        raise ValueError(f"starts: must be an integer >= 1, got {starts!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr: must be a positive number, got {lr!r}")
    if not (math.isfinite(jitter) and jitter >= 0):
        raise ValueError(f"jitter: must be a number >= 0, got {jitter!r}")


def refine(loss: InversionLoss, target: torch.Tensor, target_emb: torch.Tensor | None,
           z0: torch.Tensor, steps: int, *, starts: int = DEFAULT_STARTS,
           lr: float = DEFAULT_LR, jitter: float = DEFAULT_JITTER, seed: int = 0,
           should_stop: Callable[[], bool] | None = None) -> Refined:
    """Refine latents ``z0`` (N, L) toward target photos (N, 3, R, R) in [0, 1].

    Args:
        loss: the inversion loss (its generator and extractor frozen).
        target: the photos; ``target_emb``: their extractor embeddings (None: no
            perceptual term).
        z0: the encoder's latents.
        steps: Adam steps (0: score ``z0`` and return it).
        starts: starting points per photo (z0 and ``starts - 1`` perturbations).
        lr: Adam's learning rate; ``jitter``: the perturbations' standard deviation.
        seed: seeds the perturbations, so the same photo and budget give the same z.
        should_stop: called before every step; True raises
            :class:`tlgan_base.domain_errors.Stopped`.

    Raises:
        ValueError: a bad argument (named).
        Stopped: ``should_stop`` returned True.
    """
    check_refine_args(steps, starts, lr, jitter)
    if z0.dim() != 2 or z0.shape[0] != target.shape[0]:
        raise ValueError(f"z0: expected ({target.shape[0]}, L), got {tuple(z0.shape)}")
    n = z0.shape[0]
    z0 = z0.detach()
    with torch.no_grad():
        best_loss = loss.terms(z0, target, target_emb)["total"]
    best_z = z0.clone()
    if steps == 0:
        return Refined(best_z, best_loss, 0)
    k = starts
    gen = torch.Generator(device="cpu").manual_seed(seed)
    eps = torch.randn((k - 1) * n, z0.shape[1], generator=gen).to(z0.device)
    z = torch.cat([z0, z0.repeat(k - 1, 1) + jitter * eps]).requires_grad_(True)
    tgt = target.repeat(k, 1, 1, 1)
    temb = None if target_emb is None else target_emb.repeat(k, 1)
    opt = torch.optim.Adam([z], lr=lr)
    prune_step = math.ceil(steps * PRUNE_AT) if k > 1 else -1
    for step in range(steps):
        if should_stop is not None and should_stop():
            raise Stopped
        if step == prune_step:
            with torch.no_grad():
                per = loss.terms(z, tgt, temb)["total"].view(k, n)
                pick = per.argmin(0)
                keep = z.detach().view(k, n, -1)[pick, torch.arange(n)]
            k = 1
            z = keep.clone().requires_grad_(True)
            tgt, temb = target, target_emb
            opt = torch.optim.Adam([z], lr=lr)
        total = loss.terms(z, tgt, temb)["total"]
        # the gradient of z alone: the models' weights (shared with other threads rendering
        # faces) get none, and their weight gradients are never computed
        (z.grad,) = torch.autograd.grad(total.sum(), [z])
        # the loss just computed belongs to z before this step's update
        best_loss = _keep_best(total.detach().view(k, n), z.detach(), best_z, best_loss)
        opt.step()
    with torch.no_grad():
        last = loss.terms(z.detach(), tgt, temb)["total"].view(k, n)
    best_loss = _keep_best(last, z.detach(), best_z, best_loss)
    return Refined(best_z, best_loss, steps)


def _keep_best(per: torch.Tensor, z: torch.Tensor, best_z: torch.Tensor,
               best_loss: torch.Tensor) -> torch.Tensor:
    """Per photo, the best of the ``k`` starts' losses ``per`` (k, N) for latents ``z``
    (k * N, L), start-major; where it beats ``best_loss`` (N,), copy its z into ``best_z``
    (in place). Returns the updated best losses."""
    k, n = per.shape
    i = per.argmin(0)
    cl = per[i, torch.arange(n)]
    better = cl < best_loss
    best_z[better] = z.view(k, n, -1)[i, torch.arange(n)][better]
    return torch.where(better, cl, best_loss)
