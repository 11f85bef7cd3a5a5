"""Seeded faces worth looking at: the best of K candidate latents per seed, ranked by the
realism critic (the generation use case of ``/generate``, ``tlgan generate``, the page and
``bench/quality.py``).

``quality="raw"`` gives each seed's own latent, today's face exactly (no critic involved).
``quality="ranked"`` draws ``candidates`` latents per seed
(:meth:`~tlgan.generators.base.FaceGenerator.candidate_latents`: candidate 0 is the raw face,
candidate k >= 1 a separate stream of the same seed), scores them all in one batch with the
critic's ``score_latents`` (``tlgan_base.protocols.LatentRealismScorer``) and keeps the
highest-scoring one (ties: the lowest k). ``quality="refined"`` starts from each seed's own
latent and climbs the critic's score (``score_latents_tensor``) by ``REFINE_STEPS``
normalized-gradient steps, each projected orthogonal to the span of the axis bundle's
directions (so the face's attributes and identity stay), the whole move bounded by
``REFINE_RADIUS``: the realism hold's climb (:func:`tlgan.pipeline.realism.hold_realism`)
with every face climbing every step. All are deterministic: the same seeds, truncation
and K (or steps and radius) give the same latents, run after run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tlgan.critic import (
    DEFAULT_CANDIDATES,
    DEFAULT_QUALITY,
    MAX_CANDIDATES,
    MIN_CANDIDATES,
    QUALITIES,
    RANKED,
    RAW,
    REFINE_RADIUS,
    REFINE_STEPS,
    REFINED,
)
from tlgan.pipeline.models import Models
from tlgan.pipeline.realism import critic_score_grad, hold_realism
from tlgan_base.protocols import LatentRealismScorer

__all__ = ["DEFAULT_CANDIDATES", "MAX_CANDIDATES", "MIN_CANDIDATES", "QUALITIES", "RANKED",
           "RAW", "REFINED", "SeededLatents", "best_ranked", "candidate_pool",
           "check_candidates", "rank_pool", "refine_latents", "resolve_quality",
           "seeded_latents"]


@dataclass
class SeededLatents:
    """One latent per seed (N, L) float32; with ``ranked`` sampling, the candidate each
    came from (N,) int, and with ``ranked`` or ``refined`` its realism score (N,) float64
    (None with ``raw``; ``chosen`` None with ``refined``)."""

    latents: np.ndarray
    quality: str
    candidates: int
    chosen: np.ndarray | None = None
    realism: np.ndarray | None = None


def resolve_quality(quality: str | None, critic: LatentRealismScorer | None,
                    generator: str = "") -> str:
    """The sampling quality to use: ``quality``, or with None ``DEFAULT_QUALITY`` when a
    critic is loaded and ``raw`` when none is.

    Raises:
        ValueError: an unknown quality, or ``ranked`` / ``refined`` without a critic
            (named ``quality``).
    """
    if quality is None:
        return DEFAULT_QUALITY if critic is not None else RAW
    if quality not in QUALITIES:
        raise ValueError(f"quality: must be one of {', '.join(QUALITIES)}, got {quality!r}")
    if quality != RAW and critic is None:
        raise ValueError(f"quality: {quality!r} needs a realism critic and none is loaded for "
                         f"generator {generator!r} (train one with `tlgan critic train`, or "
                         "ask for quality 'raw')")
    return quality


def check_candidates(candidates: int) -> int:
    """``candidates`` if it is an integer in [MIN_CANDIDATES, MAX_CANDIDATES].

    Raises:
        ValueError: otherwise (named ``candidates``).
    """
    if isinstance(candidates, bool) or not isinstance(candidates, int | np.integer) or not (
            MIN_CANDIDATES <= candidates <= MAX_CANDIDATES):
        raise ValueError(f"candidates: must be an integer in [{MIN_CANDIDATES}, "
                         f"{MAX_CANDIDATES}], got {candidates!r}")
    return int(candidates)


def candidate_pool(models: Models, seeds: Sequence[int], truncation: float,
                   candidates: int) -> np.ndarray:
    """The ``candidates`` latents of each seed, seed after seed: (N * candidates, L)."""
    if not len(seeds):
        return np.zeros((0, models.latent_size), np.float32)
    return np.concatenate([models.generator.candidate_latents(s, candidates, truncation,
                                                              models.space) for s in seeds])


def rank_pool(critic: LatentRealismScorer, models: Models, pool: np.ndarray,
              candidates: int) -> np.ndarray:
    """The critic's scores (N, candidates) float64 of a candidate pool's latents (of
    ``models.space``), all scored in one batch."""
    faces = len(pool) // candidates
    if faces == 0:
        return np.zeros((0, candidates), np.float64)
    return critic.score_latents(pool, models.space).reshape(faces, candidates)


def best_ranked(scores: np.ndarray, keep: int) -> np.ndarray:
    """Which candidates (N, K) bool are among each row's ``keep`` highest scores (ties: the
    lower k first)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    allowed = np.zeros(scores.shape, bool)
    np.put_along_axis(allowed, order[:, :keep], True, axis=1)
    return allowed


def refine_latents(critic: LatentRealismScorer, models: Models, z: np.ndarray,
                   axes: np.ndarray, steps: int = REFINE_STEPS,
                   radius: float = REFINE_RADIUS) -> tuple[np.ndarray, np.ndarray]:
    """Latents z (N, L) of ``models.space`` moved up ``critic``'s score: ``steps``
    normalized-gradient steps of length ``1.5 * radius / steps``, each orthogonal to the
    rows of ``axes`` (F, L), the total move bounded by ``radius``; a step that does not
    raise a latent's score is not taken and that latent's step is halved
    (:func:`tlgan.pipeline.realism.hold_realism`, with every latent climbing every step).
    Returns the latents (N, L) float32 and their scores (N,) float64 (``score_latents``).

    Raises:
        ValueError: ``axes`` with no rows (named ``quality``: refining without the axes
            changes the faces' attributes and collapses them to one look), or bad
            ``steps`` / ``radius`` (named).
    """
    if np.size(axes) == 0:
        raise ValueError("quality: 'refined' needs the axis bundle (its axes are kept while "
                         "refining); none is loaded")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: must be an integer >= 1, got {steps!r}")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius: must be a finite number > 0, got {radius!r}")
    z = np.asarray(z, np.float32)
    if not len(z):
        return z, np.zeros(0, np.float64)
    gen = models.generator
    score = critic_score_grad(critic, models.space, gen.device, gen.max_batch)
    now, _ = score(z, np.arange(len(z)), False)
    # a start score of +inf: every latent is "below" it, so every one climbs every step
    real = hold_realism(score, z, z, axes, tolerance=0.0, max_steps=steps,
                        step=1.5 * radius / steps, max_total=radius,
                        scores=(np.full(len(z), np.inf), now))
    return real.latents, critic.score_latents(real.latents, models.space)


def seeded_latents(models: Models, seeds: Sequence[int], truncation: float = 1.0,
                   quality: str | None = None, candidates: int = DEFAULT_CANDIDATES,
                   axes: np.ndarray | None = None) -> SeededLatents:
    """One latent per seed in ``models.space``: the seed's own (``raw``), the most
    realistic of its ``candidates`` (``ranked``) or its own refined (``refined``, kept
    orthogonal to ``axes`` (F, L), the axis bundle's directions; see the module docstring).
    ``quality`` None: :func:`resolve_quality`'s default.

    Raises:
        ValueError: bad ``quality`` or ``candidates`` (named), ``ranked`` or ``refined``
            with no critic, ``refined`` without ``axes``.
    """
    critic = models.critic
    quality = resolve_quality(quality, critic, models.generator.name)
    if quality == RAW:
        return SeededLatents(models.generator.sample_latents(seeds, truncation, models.space),
                             RAW, 1)
    assert critic is not None
    if quality == REFINED:
        z = models.generator.sample_latents(seeds, truncation, models.space)
        latents, scores = refine_latents(critic, models, z,
                                         np.zeros((0, z.shape[1])) if axes is None else axes)
        return SeededLatents(latents, REFINED, 1, realism=scores)
    k = check_candidates(candidates)
    if not len(seeds):
        return SeededLatents(np.zeros((0, models.latent_size), np.float32), RANKED, k,
                             np.zeros(0, np.int64), np.zeros(0, np.float64))
    pool = candidate_pool(models, seeds, truncation, k)
    scores = rank_pool(critic, models, pool, k)
    chosen = scores.argmax(axis=1)  # the first maximum: ties go to the lowest k
    rows = np.arange(len(chosen))
    return SeededLatents(pool.reshape(len(chosen), k, -1)[rows, chosen], RANKED, k,
                         chosen=chosen.astype(np.int64), realism=scores[rows, chosen])
