"""Closed-loop control: move faces until the extractor agrees.

Feature-conditioned generation (:func:`condition`), locks held per face (:func:`hold_locks`)
and an edit's references held per face (:func:`hold_edit`) are functions over a
:data:`Renderer` (latents of some faces -> their images and probabilities) and an
:class:`~tlgan.pipeline.axis_table.AxisTable`; they never call back into a pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tlgan.pipeline.axis_table import AxisTable
from tlgan_base.domain_errors import Stopped, clip, shown

__all__ = [
    "CONDITION_CANDIDATES",
    "CONDITION_MAX_STEPS",
    "LOCK_MAX_STEPS",
    "LOCK_TOLERANCE",
    "ConditionResult",
    "HoldResult",
    "Renderer",
    "condition",
    "condition_cost",
    "feature_targets",
    "held_locks",
    "held_references",
    "hold_cost",
    "hold_edit",
    "hold_locks",
    "logit_gap",
    "nearest_candidates",
    "resolve_hold_references",
]

#: closed-loop locks: a locked attribute is held when |p - p_before| <= this
LOCK_TOLERANCE = 0.05
#: closed-loop locks: most correction passes (each one render + label of the batch)
LOCK_MAX_STEPS = 4
#: feature-conditioned generation: candidate starts per face and most correction steps
CONDITION_CANDIDATES = 16
CONDITION_MAX_STEPS = 12

#: ``render(latents (M, L), rows (M,))``: the faces (uint8 (M, H, W, 3)) and probabilities
#: (M, A) of those latents, which belong to the faces ``rows`` of the batch
Renderer = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
Proposal = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
Error = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class ConditionResult:
    """Outcome of feature-conditioned generation for a batch of faces."""

    latents: np.ndarray
    images: np.ndarray
    probs: np.ndarray
    unmet: list[list[str]]
    steps: int
    #: ranked by the critic: the candidate each face started from (N,) and the realism
    #: score of each face returned (N,); None otherwise
    chosen: np.ndarray | None = None
    realism: np.ndarray | None = None


@dataclass
class HoldResult:
    """Outcome of closed-loop locks for a batch of moved faces."""

    latents: np.ndarray
    images: np.ndarray
    probs: np.ndarray
    unheld: list[list[str]]
    steps: int


def condition_cost(faces: int) -> int:
    """The most face-passes (render + label of one face) conditioned generation of
    ``faces`` faces may take: the candidates, the start and every step."""
    return faces * (CONDITION_CANDIDATES + 1 + CONDITION_MAX_STEPS)


def hold_cost(faces: int) -> int:
    """The most face-passes closed-loop locks on ``faces`` faces may take."""
    return faces * (2 + LOCK_MAX_STEPS)


def logit_gap(probs: np.ndarray, targets: np.ndarray, eps: float = 0.02) -> np.ndarray:
    """logit(target) - logit(p), both clipped to [eps, 1 - eps] (saturated outputs count as
    eps away, so a gap stays finite)."""
    tc = np.clip(targets, eps, 1 - eps)
    pc = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    return np.asarray(np.log(tc / (1 - tc)) - np.log(pc / (1 - pc)))


def held_locks(table: AxisTable, attributes: Sequence[str], locked: Sequence[str]
               ) -> list[str]:
    """The locked axes that :func:`hold_locks` holds closed-loop: those that are also
    labelled ``attributes`` (none without an extractor; others stay open-loop)."""
    attrs = set(attributes)
    return [n for n in dict.fromkeys(locked) if n in attrs and n in table.index]


def held_references(table: AxisTable, attributes: Sequence[str], moves: Mapping[str, float],
                    locked: Sequence[str] = ()) -> list[str]:
    """The reference axes (gender, age) that :func:`hold_edit` holds per face for an edit
    with ``moves``: those that are labelled ``attributes``, not moved (a distance of 0
    counts as not moved) and not already locked."""
    moved = {n for n, d in moves.items() if d != 0}
    locks = set(locked)
    attrs = set(attributes)
    return [r for r in table.references if r in attrs and r not in moved and r not in locks]


def resolve_hold_references(table: AxisTable, attributes: Sequence[str], hold: bool | None
                            ) -> bool:
    """Whether an edit holds its references per face (:func:`hold_edit`): ``None`` means
    on when some reference axis is labelled (an extractor and a bundle with references
    are loaded: the default, chosen on ``bench/locality.py``); True where that is not so
    is a ValueError naming ``hold_references``."""
    available = any(r in attributes for r in table.references)
    if hold is None:
        return available
    if hold and not available:
        raise ValueError("hold_references: needs a feature extractor and an axis bundle "
                         "with reference axes the extractor labels")
    return bool(hold)


def _unheld(held: Sequence[str], probs: np.ndarray, target: np.ndarray, tolerance: float
            ) -> list[list[str]]:
    final = np.abs(probs - target) > tolerance
    return [[a for a, bad in zip(held, row, strict=True) if bad] for row in final]


def _newton(jac: np.ndarray, dirs: np.ndarray, target: np.ndarray) -> tuple[Proposal, Error]:
    """A Newton step on the linear model ``jac`` (d logit(attr a) / d step along dirs b)
    towards ``target`` probabilities, and the error it lowers."""

    def propose(cur: np.ndarray, p: np.ndarray, unmet: np.ndarray, scale: np.ndarray
                ) -> np.ndarray:
        active = unmet.any(axis=1)
        sol = np.linalg.lstsq(jac, logit_gap(p, target).T, rcond=1e-3)[0].T  # (N, K)
        return cur + (np.clip(sol, -1.5, 1.5) * (active * scale)[:, None]) @ dirs

    def error(p: np.ndarray, unmet: np.ndarray) -> np.ndarray:
        return np.abs(p - target).sum(axis=1)

    return propose, error


def _unchanged(render: Renderer, moved: np.ndarray) -> HoldResult:
    images, probs = render(moved, np.arange(len(moved)))
    return HoldResult(moved.astype(np.float32), images, probs, [[] for _ in moved], 0)


def _check_shapes(start: np.ndarray, moved: np.ndarray) -> None:
    if start.shape != moved.shape or start.ndim != 2:
        raise ValueError(f"moved: expected the shape of start {start.shape}, got "
                         f"{moved.shape}")


def hold_locks(render: Renderer, table: AxisTable, attributes: Sequence[str],
               start: np.ndarray, moved: np.ndarray, locked: Sequence[str], *,
               tolerance: float = LOCK_TOLERANCE, max_steps: int = LOCK_MAX_STEPS,
               should_stop: Callable[[], bool] | None = None) -> HoldResult:
    """Closed-loop locks: keep each locked attribute's probability where it was per face.

    ``moved`` (N, L) are ``start`` (N, L) after an open-loop edit (locked axes already
    projected out of the move). That holds the locked attributes only on average; here
    each face is labelled before and after, and while a locked attribute's probability
    is more than ``tolerance`` from its value before the move, the face is corrected
    along the locked axes by a Newton step on the axes' linear model (the logit gaps
    solved through the (K, K) matrix of each locked attribute's GLM slope along each
    locked axis), at most ``max_steps`` times; a step that makes a face worse is
    halved and not taken. Returns the final latents, faces, probabilities and, per
    face, the locked attributes that could not be held. ``should_stop`` is asked before
    every correction step; once it is true, :class:`Stopped` is raised.
    """
    held = held_locks(table, attributes, locked)
    _check_shapes(start, moved)
    n = len(moved)
    if not held or max_steps < 1:
        return _unchanged(render, moved)
    cols = [list(attributes).index(a) for a in held]
    rows = [table.index[a] for a in held]
    # before and after in one forward pass
    images, probs = render(np.concatenate([start, moved]), np.tile(np.arange(n), 2))
    target = probs[:n, cols]
    images, probs = images[n:], probs[n:]
    dirs = table.axes[rows].astype(np.float64)
    raw, coef_norm = table.linear_models(rows)
    propose, error = _newton((raw * coef_norm[:, None]) @ dirs.T, dirs, target)
    cur, images, probs, steps = closed_loop(
        render, moved.astype(np.float64), images, probs, cols, target, tolerance, max_steps,
        propose, error, should_stop)
    return HoldResult(cur.astype(np.float32), images, probs,
                      _unheld(held, probs[:, cols], target, tolerance), steps)


def _project_off(table: AxisTable, d: np.ndarray, idx: list[int]) -> np.ndarray:
    if not idx:
        return d
    q, _ = np.linalg.qr(table.axes[idx].astype(np.float64).T)  # (L, F) orthonormal
    return np.asarray(d - (d @ q) @ q.T)


def hold_edit(render: Renderer, table: AxisTable, attributes: Sequence[str],
              start: np.ndarray, moved: np.ndarray, moves: Mapping[str, float],
              locked: Sequence[str] = (), *, tolerance: float = LOCK_TOLERANCE,
              max_steps: int = LOCK_MAX_STEPS,
              should_stop: Callable[[], bool] | None = None) -> HoldResult:
    """An edit with its references held per face (``hold_references``): like
    :func:`hold_locks`, but the held attributes are the locks *and* the references the
    edit does not move (:func:`held_references`), and each correction is projected
    orthogonal to the moved axes (so a hold never takes back the move itself: the
    latent's component along each moved axis stays where the move put it). ``render``
    renders the faces returned and judged (local edits render the moved latents inside
    the moves' mask over the start faces).

    ``moved`` (N, L) are ``start`` (N, L) after the open-loop edit by ``moves`` with
    ``locked`` projected out. Returns the final latents, the faces returned, their
    probabilities and per face the held attributes (locks and references) that could not
    be held within ``tolerance``.
    """
    _check_shapes(start, moved)
    held = list(dict.fromkeys([*held_locks(table, attributes, locked),
                               *held_references(table, attributes, moves, locked)]))
    n = len(moved)
    if not held or max_steps < 1:
        return _unchanged(render, moved)
    index = table.index
    moved_axes = [m for m, d in moves.items()
                  if d != 0 and m not in held and m not in locked and m in index]
    keep = [m for m in moved_axes if m in attributes]
    cols = [list(attributes).index(a) for a in [*held, *keep]]
    rows = [index[a] for a in held]
    # the start's labels and the open-loop edit's faces in one forward pass (a local
    # render of start over start is the start face)
    images, probs = render(np.concatenate([start, moved]), np.tile(np.arange(n), 2))
    target = np.concatenate([probs[:n, cols[:len(held)]], probs[n:, cols[len(held):]]],
                            axis=1)
    images, probs = images[n:], probs[n:]
    # locks held open-loop only (no attribute to label) stay projected out of every
    # correction; the held ones are corrected along their own axes, as hold_locks does
    fixed = [index[a] for a in dict.fromkeys(locked) if a not in held and a in index]
    dirs = _project_off(table, table.axes[rows].astype(np.float64),
                        [*(index[m] for m in moved_axes), *fixed])
    # the moved attributes keep the probability the open-loop move gave them, by
    # moving further along their own axes (locks projected out) where a hold pulled
    # them back
    dirs = np.concatenate([dirs, _project_off(
        table, table.axes[[index[m] for m in keep]].astype(np.float64), fixed)])
    raw, coef_norm = table.linear_models([*rows, *(index[m] for m in keep)])
    propose, error = _newton((raw * coef_norm[:, None]) @ dirs.T, dirs, target)
    cur, images, probs, steps = closed_loop(
        render, moved.astype(np.float64), images, probs, cols, target, tolerance, max_steps,
        propose, error, should_stop)
    return HoldResult(cur.astype(np.float32), images, probs,
                      _unheld(held, probs[:, cols[:len(held)]], target[:, :len(held)],
                              tolerance), steps)


def condition(render: Renderer, axes: np.ndarray, names: Sequence[str], cols: Sequence[int],
              targets: np.ndarray, calibration: Mapping[str, float], z: np.ndarray, *,
              tolerance: float = 0.2, max_steps: int = CONDITION_MAX_STEPS,
              max_step: float = 1.5, max_total: float = 8.0,
              should_stop: Callable[[], bool] | None = None) -> ConditionResult:
    """Move latents (N, L) along ``axes`` (one per name) until the probabilities in
    ``cols`` agree with ``targets``.

    A target is met when |p - target| <= tolerance. Each step moves every unmet face
    along each unmet attribute's axis by the logit gap divided by that axis's
    ``calibration`` (logit change per unit; 1.0 when missing), clipped to ``max_step``; a
    face never moves more than ``max_total`` from where it started. Returns the final
    latents, faces, probabilities and, per face, the attributes that could not be met.
    ``should_stop`` is asked before every step; once it is true, :class:`Stopped` is raised.
    """
    axes_t = np.asarray(axes, dtype=np.float64)
    cal = np.array([max(calibration.get(n, 1.0), 1e-3) for n in names])
    start = z.astype(np.float64).copy()
    images, probs = render(start.astype(np.float32), np.arange(len(start)))

    def propose(cur: np.ndarray, p: np.ndarray, unmet: np.ndarray, scale: np.ndarray
                ) -> np.ndarray:
        dist = np.clip(logit_gap(p, targets) / cal, -max_step, max_step) * unmet
        offset = cur + (dist * scale[:, None]) @ axes_t - start
        norm = np.linalg.norm(offset, axis=1, keepdims=True)
        return start + offset * np.minimum(1.0, max_total / np.maximum(norm, 1e-12))

    def error(p: np.ndarray, unmet: np.ndarray) -> np.ndarray:
        return np.abs(logit_gap(p, targets) * unmet).sum(axis=1)

    cur, images, probs, steps = closed_loop(
        render, start.copy(), images, probs, list(cols), targets, tolerance, max_steps,
        propose, error, should_stop)
    p = probs[:, list(cols)]
    unmet = [[n for n, ok in zip(names, row, strict=True) if not ok]
             for row in (np.abs(p - targets) <= tolerance)]
    return ConditionResult(cur.astype(np.float32), images, probs, unmet, steps)


def closed_loop(render: Renderer, cur: np.ndarray, images: np.ndarray, probs: np.ndarray,
                cols: list[int], target: np.ndarray, tolerance: float, max_steps: int,
                propose: Proposal, error: Error,
                should_stop: Callable[[], bool] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Move faces until the probabilities ``probs[:, cols]`` are within ``tolerance`` of
    ``target`` (shared by :func:`condition`, :func:`hold_locks` and :func:`hold_edit`).

    Each step renders ``propose(cur, p, unmet, scale)`` for the faces still off target;
    a face takes its candidate when ``error(p, unmet)`` falls, else its step ``scale``
    is halved. Only the faces still off target are rendered. Returns the latents, faces,
    probabilities and the steps taken; raises :class:`Stopped` when ``should_stop()``
    turns true before a step.
    """
    scale = np.ones(len(cur))  # per-face step scale, halved when a step made things worse
    steps = 0
    for steps in range(1, max_steps + 1):
        if should_stop is not None and should_stop():
            raise Stopped("stopped between steps: nobody waits for the result")
        p = probs[:, cols]
        unmet = np.abs(p - target) > tolerance
        active = unmet.any(axis=1)
        if not active.any():
            steps -= 1
            break
        rows = np.flatnonzero(active)
        cand = propose(cur, p, unmet, scale)
        cand_images, rows_probs = render(cand[rows], rows)
        cand_probs = probs.copy()
        cand_probs[rows] = rows_probs
        better = active & (error(cand_probs[:, cols], unmet) < error(p, unmet))
        cur[better] = cand[better]
        images[rows[better[rows]]] = cand_images[better[rows]]
        probs[better] = cand_probs[better]
        scale[active & ~better] *= 0.5
    return cur, images, probs, steps


def feature_targets(table: AxisTable, attributes: Sequence[str], labelled: bool,
                    targets: Mapping[str, float]
                    ) -> tuple[list[str], list[int], list[int], np.ndarray]:
    """Validated feature targets ``{attribute: probability}``: names, their label columns
    in ``attributes``, their axes and the target values. ``labelled``: whether an
    extractor labels faces. ValueError naming ``moves`` or ``features``."""
    table.require_bundle()
    if not labelled:
        raise ValueError("features: this service has no feature extractor loaded")
    names = list(targets)
    attrs = list(attributes)
    attr_idx = []
    for n in names:
        t = targets[n]
        if not isinstance(t, (int, float)) or not 0.0 <= t <= 1.0:
            raise ValueError(f"features.{clip(n)}: target must be a probability in [0, 1]")
        if n not in attrs:
            raise ValueError(
                f"features: unknown attribute {shown(n)}; valid: {', '.join(attrs)}")
        attr_idx.append(attrs.index(n))
    axis_idx = [table.axis_index(n, "features") for n in names]
    return names, attr_idx, axis_idx, np.array([targets[n] for n in names], dtype=np.float64)


def nearest_candidates(pool: np.ndarray, probs: np.ndarray, candidates: int,
                       targets: np.ndarray) -> np.ndarray:
    """Of each face's ``candidates`` latents in ``pool`` (N * candidates, L), the one whose
    probabilities (rows of ``probs``, the targets' columns) are nearest ``targets`` (sum of
    |logit gaps|)."""
    faces = len(pool) // candidates
    best = nearest_index(probs, candidates, targets)
    return pool.reshape(faces, candidates, -1)[np.arange(faces), best]


def nearest_index(probs: np.ndarray, candidates: int, targets: np.ndarray,
                  allowed: np.ndarray | None = None) -> np.ndarray:
    """Of each face's ``candidates`` rows of ``probs`` (N * candidates, A), the index (N,)
    of the one nearest ``targets`` (sum of |logit gaps|; ties: the lowest), among the
    ``allowed`` (N, candidates) ones when given."""
    gap = np.abs(logit_gap(probs, targets)).sum(axis=1).reshape(-1, candidates)
    if allowed is not None:
        gap = np.where(allowed, gap, np.inf)
    return gap.argmin(axis=1)
