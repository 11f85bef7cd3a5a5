"""Realism held during edits: a move that leaves the realistic region is corrected back.

After an edit's move (and its lock / reference corrections), a realism critic
(:class:`~tlgan_base.protocols.LatentRealismScorer`) scores the start latent and the edited
latent (for a local edit, the moved latent: the critic scores latents, not the blended face).
Where the edited face scores more than a tolerance below the start face,
:func:`hold_realism` climbs the critic's score by a few normalized-gradient steps on the
latent, each step projected orthogonal to the directions the edit must keep (the moved axes,
the locked axes, the held references), so the move and the locks stay where they were. The
function works over a :data:`ScoreGrad` (latents -> scores and their gradients), like the
closed loops of :mod:`tlgan.pipeline.control` work over a renderer; :func:`critic_score_grad`
builds one from a critic's ``score_latents_tensor``. Refined sampling
(:mod:`tlgan.pipeline.ranking`) climbs the same way from each seed's latent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from tlgan_base.domain_errors import Stopped
from tlgan_base.protocols import LatentRealismScorer

__all__ = ["REALISM_DEFAULT", "REALISM_MAX_STEPS", "REALISM_MAX_TOTAL", "REALISM_STEP",
           "REALISM_TOLERANCE", "Realism", "ScoreGrad", "critic_score_grad", "hold_realism",
           "realism_cost", "resolve_realism"]

#: an edited face is held when its critic score >= the start face's score - this (logits)
REALISM_TOLERANCE = 0.5
#: most correction steps (each one render + critic pass, forward and backward)
REALISM_MAX_STEPS = 4
#: the length of one correction step in the latent (a z ~ N(0, I) in R^100 has norm ~10)
REALISM_STEP = 0.75
#: the farthest the corrections may take a latent from where the edit put it
REALISM_MAX_TOTAL = 2.0
#: whether an edit holds realism when a critic is loaded and the request does not say: off,
#: chosen on ``bench/quality_edits.py``: with the discriminator critic the hold fixed no
#: broken face by eye; with the taught critic it takes the edits whose score fell from 167
#: to 55 of the 460 edits of fine faces, but the faces it moves change too little to see
#: (by eye, as many fine faces break with it as without: 17 / 17 on Smiling -3, 13 / 13 on
#: Eyeglasses +3), at 1.4x the time of a checked edit; a bound of 4 (refined sampling's
#: radius) instead of REALISM_MAX_TOTAL gives the same figures
REALISM_DEFAULT = False

#: ``score(latents (M, L), rows (M,), grad)``: the critic's scores (M,) of the faces of those
#: latents (which belong to the faces ``rows`` of the batch) and, when ``grad``, the scores'
#: gradients with respect to the latents (M, L) (None otherwise)
ScoreGrad = Callable[[np.ndarray, np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Realism:
    """Realism held for a batch of edited faces: the latents returned (N, L), per face the
    critic's score of the start face, of the edited face before the hold (``moved``) and of
    the face returned (``end``), whether the face returned is within ``tolerance`` of the
    start's score (``held``) and whether the hold moved its latent (``changed``); ``steps``:
    the correction steps taken of ``max_steps`` allowed (0: only checked)."""

    latents: np.ndarray
    start: np.ndarray
    moved: np.ndarray
    end: np.ndarray
    held: np.ndarray
    changed: np.ndarray
    tolerance: float
    steps: int
    max_steps: int = REALISM_MAX_STEPS

    def undone(self, rows: np.ndarray, latents: np.ndarray) -> Realism:
        """This outcome with the corrections of faces ``rows`` taken back: their
        ``latents`` (the edited ones) and scores as before the hold."""
        if not len(rows):
            return self
        out = dataclasses.replace(self, latents=self.latents.copy(), end=self.end.copy(),
                                  held=self.held.copy(), changed=self.changed.copy())
        out.latents[rows] = latents
        out.end[rows] = self.moved[rows]
        out.held[rows] = self.moved[rows] >= self.start[rows] - self.tolerance
        out.changed[rows] = False
        return out

    def face(self, i: int) -> dict[str, float | bool]:
        """Face ``i``'s outcome as plain values (for JSON answers and CLI lines): the scores,
        ``held``, ``hold`` (whether corrections were allowed) and ``tolerance``."""
        return {"start": round(float(self.start[i]), 4), "moved": round(float(self.moved[i]), 4),
                "end": round(float(self.end[i]), 4), "held": bool(self.held[i]),
                "hold": self.max_steps > 0, "tolerance": self.tolerance}


def realism_cost(faces: int, max_steps: int = REALISM_MAX_STEPS) -> int:
    """The most face-passes (render + critic of one face, counted 3 for a pass with its
    gradient) :func:`hold_realism` of ``faces`` edited faces may take: the start and edited
    faces scored and, with steps, the first gradient, every step and the final render."""
    return faces * (2 + (3 * (1 + max_steps) + 1 if max_steps > 0 else 0))


def resolve_realism(available: bool, realism: bool | None) -> bool:
    """Whether an edit holds realism: ``None`` means :data:`REALISM_DEFAULT` when a critic
    is loaded (``available``); True without one is a ValueError naming ``realism``."""
    if realism is None:
        return REALISM_DEFAULT and available
    if realism and not available:
        raise ValueError("realism: this service has no realism critic loaded for its "
                         "generator (send realism false or null)")
    return bool(realism)


def _basis(fixed: np.ndarray, size: int) -> np.ndarray:
    """An orthonormal basis (L, F) of the span of the rows of ``fixed`` (F, L)."""
    if len(fixed) == 0:
        return np.zeros((size, 0))
    q, r = np.linalg.qr(np.asarray(fixed, np.float64).T)
    keep = np.abs(np.diag(r)) > 1e-9 * max(1.0, float(np.abs(r).max()))
    return np.asarray(q[:, keep])


def hold_realism(score: ScoreGrad, start: np.ndarray, moved: np.ndarray, fixed: np.ndarray,
                 *, tolerance: float = REALISM_TOLERANCE, max_steps: int = REALISM_MAX_STEPS,
                 step: float = REALISM_STEP, max_total: float = REALISM_MAX_TOTAL,
                 scores: tuple[np.ndarray, np.ndarray] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> Realism:
    """Bring edited faces whose critic score fell more than ``tolerance`` below their start
    face's back within it.

    ``start`` (N, L) are the latents before the edit and ``moved`` (N, L) after it;
    ``fixed`` (F, L) are the directions the corrections must not move along (the moved
    axes, the locks, the held references). The start and edited faces are scored in one
    pass (without gradients; ``scores``: their scores (N,) each, already known), the
    gradients of the faces that fell taken once; then, at most ``max_steps`` times, each
    face still more than ``tolerance`` below its start takes a step of length ``step``
    along its score's gradient projected orthogonal to ``fixed`` (normalized), its total
    correction bounded by ``max_total``; a step that does not raise the score is not taken
    and the face's step is halved. Deterministic for a deterministic ``score``.
    ``should_stop`` is asked before every step (:class:`Stopped` once true).

    Raises:
        ValueError: naming ``moved``, ``fixed``, ``scores``, ``tolerance``, ``max_steps``,
            ``step`` or ``max_total``.
    """
    if start.shape != moved.shape or moved.ndim != 2:
        raise ValueError(f"moved: expected the shape of start {start.shape}, got "
                         f"{moved.shape}")
    fixed = np.asarray(fixed, np.float64).reshape(-1, moved.shape[1]) if np.size(fixed) else (
        np.zeros((0, moved.shape[1])))
    if not np.isfinite(fixed).all():
        raise ValueError("fixed: contains NaN or infinity")
    for name, v in (("tolerance", tolerance), ("step", step), ("max_total", max_total)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name}: must be a finite number >= 0, got {v!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0:
        raise ValueError(f"max_steps: must be an integer >= 0, got {max_steps!r}")
    n, size = moved.shape
    q = _basis(fixed, size)
    origin = moved.astype(np.float64)
    if scores is None:
        both, _ = score(np.concatenate([start, moved]).astype(np.float32),
                        np.tile(np.arange(n), 2), False)
        scores = both[:n], both[n:]
    s0 = np.asarray(scores[0], np.float64)
    s_moved = np.asarray(scores[1], np.float64)
    if s0.shape != (n,) or s_moved.shape != (n,):
        raise ValueError(f"scores: expected two arrays of {n} scores")
    cur_s = s_moved.copy()
    grad = np.zeros_like(origin)
    fell = np.flatnonzero(cur_s < s0 - tolerance)
    if len(fell) and max_steps > 0:
        _, g0 = score(moved[fell].astype(np.float32), fell, True)
        assert g0 is not None
        grad[fell] = g0
    cur = origin.copy()
    scale = np.ones(n)
    steps = 0
    for steps in range(1, max_steps + 1):
        active = cur_s < s0 - tolerance
        if not active.any():
            steps -= 1
            break
        if should_stop is not None and should_stop():
            raise Stopped("stopped between steps: nobody waits for the result")
        rows = np.flatnonzero(active)
        g = grad[rows] - (grad[rows] @ q) @ q.T
        norm = np.linalg.norm(g, axis=1, keepdims=True)
        g = np.where(norm > 1e-12, g / np.maximum(norm, 1e-12), 0.0)
        offset = cur[rows] + g * (step * scale[rows])[:, None] - origin[rows]
        length = np.linalg.norm(offset, axis=1, keepdims=True)
        cand = origin[rows] + offset * np.minimum(1.0, max_total / np.maximum(length, 1e-12))
        cand_s, cand_g = score(cand.astype(np.float32), rows, True)
        assert cand_g is not None
        better = cand_s > cur_s[rows]
        up = rows[better]
        cur[up], cur_s[up], grad[up] = cand[better], cand_s[better], cand_g[better]
        scale[rows[~better]] *= 0.5
    changed = np.any(cur != origin, axis=1)
    return Realism(cur.astype(np.float32), s0, s_moved, cur_s,
                   cur_s >= s0 - tolerance, changed, float(tolerance), steps, max_steps)


def critic_score_grad(critic: LatentRealismScorer, space: str, device: torch.device | str,
                      max_batch: int) -> ScoreGrad:
    """A :data:`ScoreGrad` of ``critic`` on latents of ``space``: its
    ``score_latents_tensor`` (a critic of images renders the latents, the taught critic reads
    the generator's features of them), ``max_batch`` latents at a time on ``device``. The
    latent scored is the one given, also for a local edit (its moved latent: the critic
    scores the face that latent renders alone, not the blend of start and moved faces).
    Only the latents get gradients (the models' weights, shared with other threads, get
    none).

    Raises:
        ValueError: ``max_batch`` < 1.
    """
    if max_batch < 1:
        raise ValueError(f"max_batch: must be >= 1, got {max_batch}")

    def score(z: np.ndarray, rows: np.ndarray, grad: bool
              ) -> tuple[np.ndarray, np.ndarray | None]:
        out_s, out_g = [np.zeros(0)], [np.zeros((0, z.shape[1]))]
        with torch.inference_mode(not grad), torch.set_grad_enabled(grad):
            for i in range(0, len(z), max_batch):
                zt = torch.as_tensor(np.asarray(z[i:i + max_batch], np.float32),
                                     device=device).requires_grad_(grad)
                s = critic.score_latents_tensor(zt, space)
                if grad:
                    (g,) = torch.autograd.grad(s.sum(), [zt])
                    out_g.append(g.double().cpu().numpy())
                out_s.append(s.detach().double().cpu().numpy())
        return np.concatenate(out_s), np.concatenate(out_g) if grad else None

    return score
