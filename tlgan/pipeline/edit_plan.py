"""The edit use case: moves and locks on start latents, planned once and run as one job.

:func:`plan_edit` validates an edit (the locks once, the moves, the options), moves the
latents open-loop and decides what the edit needs: a plain render (which a server may
batch with other requests), a local render, locks held per face, or references held per
face, and, with a realism critic, the edited faces' realism checked (and held, when asked:
:mod:`tlgan.pipeline.realism`, the critic score brought back near the start face's).
:meth:`EditPlan.run` does that work; :attr:`EditPlan.cost` is its most face-passes, for a
scheduler. The API's ``POST /edit``, ``tlgan edit`` and the benches call this.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tlgan.latents import parse_latent
from tlgan.pipeline.control import (
    LOCK_TOLERANCE,
    held_locks,
    held_references,
    hold_cost,
    resolve_hold_references,
)
from tlgan.pipeline.facade import Pipeline
from tlgan.pipeline.realism import (
    REALISM_MAX_STEPS,
    REALISM_MAX_TOTAL,
    Realism,
    realism_cost,
    resolve_realism,
)

__all__ = ["EditPlan", "EditResult", "plan_edit"]

#: ``check(latents, what)``: raise ValueError when latents the edit made are unusable
#: (``what`` says how they were made, e.g. "the moved latent")
LatentCheck = Callable[[np.ndarray, str], None]


@dataclass(frozen=True)
class EditResult:
    """An edit done: the moved latents (N, L), their faces (uint8 (N, H, W, 3)), their
    probabilities (N, A) (None without ``with_features``), per face the held attributes
    that could not be held (None when nothing was held closed-loop), and whether the edit
    was local and held its references; ``attributes`` name the probabilities' columns;
    ``realism``: the realism check's outcome, held or not (None without a critic or a
    move)."""

    latents: np.ndarray
    images: np.ndarray
    probs: np.ndarray | None
    unheld: list[list[str]] | None
    locality: bool
    hold_references: bool
    attributes: list[str]
    realism: Realism | None = None


@dataclass(frozen=True)
class EditPlan:
    """A validated edit of ``start`` (N, L): ``moved`` is the open-loop move (locks
    projected out). ``locality``: rendered as a local edit; ``hold_references``: the
    references (and locks) held per face; ``holds_locks``: locks held per face (without
    references); ``checks_realism``: the critic judges the faces after the rest (a critic
    is loaded and the edit moves); ``realism``: and the faces that fell are corrected."""

    pipeline: Pipeline
    start: np.ndarray
    moved: np.ndarray
    moves: Mapping[str, float]
    locked: list[str]
    locality: bool
    hold_references: bool
    holds_locks: bool
    with_features: bool
    check: LatentCheck | None = None
    realism: bool = False
    checks_realism: bool = False
    #: the farthest the realism hold may take a latent (the bench tries others)
    realism_max_total: float = REALISM_MAX_TOTAL

    @property
    def batchable(self) -> bool:
        """Whether the edit is a plain render of ``moved`` (:meth:`rendered` takes its
        faces, so that a server may render it in a batch with other requests)."""
        return not (self.hold_references or self.holds_locks or self.locality
                    or self.checks_realism)

    @property
    def cost(self) -> float:
        """The most face-passes (render + label of one face) :meth:`run` may take."""
        faces = len(self.start)
        extra = realism_cost(faces, REALISM_MAX_STEPS if self.realism else 0) if (
            self.checks_realism) else 0
        if self.hold_references:
            return hold_cost(faces) + extra
        if self.holds_locks:
            return hold_cost(faces) * (2 if self.locality else 1) + extra
        return faces + extra

    def part(self, rows: slice) -> EditPlan:
        """The same edit of the faces ``rows`` only."""
        return dataclasses.replace(self, start=self.start[rows], moved=self.moved[rows])

    def rendered(self, images: np.ndarray, probs: np.ndarray | None) -> EditResult:
        """The result of a :attr:`batchable` edit from the faces of ``moved``."""
        return EditResult(self.moved, images, probs if self.with_features else None, None,
                          self.locality, self.hold_references, self.pipeline.attributes)

    def run(self, should_stop: Callable[[], bool] | None = None) -> EditResult:
        """Do the edit. Raises :class:`~tlgan_base.domain_errors.Stopped` once ``should_stop`` is
        true between closed-loop steps, and what ``check`` raises for held latents."""
        result = self._moved(should_stop)
        return self._hold_realism(result, should_stop) if self.checks_realism else result

    def _moved(self, should_stop: Callable[[], bool] | None) -> EditResult:
        p, start, moved, moves, locked = (self.pipeline, self.start, self.moved, self.moves,
                                          self.locked)
        if self.hold_references:
            held = p.hold_edit(start, moved, moves, locked, locality=self.locality,
                               should_stop=should_stop)
            self._check(held.latents, "the moved latent, with its references held,")
            return self._result(held.latents, held.images, held.probs, held.unheld)
        if self.holds_locks:
            held = p.hold_locks(start, moved, locked, should_stop=should_stop)
            self._check(held.latents, "the moved latent, with its locks held,")
            if not self.locality:
                return self._result(held.latents, held.images, held.probs, held.unheld)
            faces = [p.local_locks(s, m, moves, locked)
                     for s, m in zip(start, held.latents, strict=True)]
            return self._result(held.latents, np.concatenate([f[0] for f in faces]),
                                np.concatenate([f[1] for f in faces]), [f[2] for f in faces])
        if self.locality:
            images, probs = p.render_edit(start, moved, moves, True, self.with_features)
            return self.rendered(images, probs)
        return self.rendered(*p.render_and_label(moved, self.with_features))

    def _hold_realism(self, result: EditResult, should_stop: Callable[[], bool] | None
                      ) -> EditResult:
        """``result`` with realism checked and, with :attr:`realism`, held
        (:func:`tlgan.pipeline.realism.hold_realism`; without, no step is taken): the
        corrections stay orthogonal to the moved axes, the locks and the held references;
        the faces they moved are rendered again and their held locks / references judged
        again on the final face (``unheld``); a face whose correction let go of a lock or
        reference that the edit had held keeps the edit's face (the hold never costs a
        lock)."""
        p, table = self.pipeline, self.pipeline.table
        held = [*held_locks(table, p.attributes, self.locked),
                *(held_references(table, p.attributes, self.moves, self.locked)
                  if self.hold_references else [])]
        names = dict.fromkeys([*(m for m, d in self.moves.items() if d != 0), *self.locked,
                               *held])
        fixed = table.axes[[table.index[n] for n in names if n in table.index]]
        assert p.critic is not None
        # the critic scores latents: a local edit's moved latent stands for its face
        space = p.latent_space
        scores = (p.critic.score_latents(self.start, space),
                  p.critic.score_latents(result.latents, space))
        real = p.hold_realism(self.start, result.latents, fixed,
                              max_steps=REALISM_MAX_STEPS if self.realism else 0,
                              max_total=self.realism_max_total,
                              scores=scores, should_stop=should_stop)
        rows = np.flatnonzero(real.changed)
        if not len(rows):
            return dataclasses.replace(result, realism=real)
        self._check(real.latents, "the moved latent, with its realism held,")
        label = p.extractor is not None and (self.with_features or result.unheld is not None)
        images, probs = p.render_edit(self.start[rows], real.latents[rows], self.moves,
                                      self.locality, label)
        out_probs, unheld = result.probs, result.unheld
        if probs is not None and unheld is not None:
            cols = [p.attributes.index(a) for a in held]
            before = p.label_latents(self.start[rows])[:, cols]
            unheld = list(unheld)
            keep = np.ones(len(rows), bool)
            for i, r in enumerate(rows):
                bad = np.abs(probs[i, cols] - before[i]) > LOCK_TOLERANCE
                now = [a for a, b in zip(held, bad, strict=True) if b]
                keep[i] = set(now) <= set(unheld[r])
                if keep[i]:
                    unheld[r] = now
            real = real.undone(rows[~keep], result.latents[rows[~keep]])
            rows, images, probs = rows[keep], images[keep], probs[keep]
        out_images = result.images.copy()
        out_images[rows] = images
        if probs is not None and out_probs is not None:
            out_probs = out_probs.copy()
            out_probs[rows] = probs
        return dataclasses.replace(result, latents=real.latents, images=out_images,
                                   probs=out_probs, unheld=unheld, realism=real)

    def _check(self, latents: np.ndarray, what: str) -> None:
        if self.check is not None:
            self.check(latents, what)

    def _result(self, latents: np.ndarray, images: np.ndarray, probs: np.ndarray,
                unheld: list[list[str]]) -> EditResult:
        return EditResult(latents, images, probs if self.with_features else None, unheld,
                          self.locality, self.hold_references, self.pipeline.attributes)


def plan_edit(pipeline: Pipeline, start: np.ndarray | Sequence[Sequence[float]],
              moves: Mapping[str, float], locked: Sequence[str] = (), *,
              locality: bool | None = None, hold_references: bool | None = None,
              with_features: bool = True, check: LatentCheck | None = None,
              locked_field: str = "locked", realism: bool | None = None,
              check_realism: bool = True) -> EditPlan:
    """Validate an edit of latents ``start`` (N, L; or a list of latents as lists of
    numbers, validated here) and move them open-loop.

    ``moves`` {axis: distance} along unit axes (the pipeline's and, on a pipeline from
    :meth:`Pipeline.with_custom`, a request's own); ``locked`` axes are projected out of the
    summed move and, where the extractor labels them, held per face. ``locality`` and
    ``hold_references``: None is the default (on when available). With a critic, an edit
    that moves checks its faces' realism (:mod:`tlgan.pipeline.realism`; the outcome on
    :attr:`EditResult.realism`); ``realism`` True also holds it (corrects the faces that
    fell), None is :data:`~tlgan.pipeline.realism.REALISM_DEFAULT` (off);
    ``check_realism`` False skips the check (and the hold) altogether.
    ``check`` is called on the moved latents (and later on the held ones).

    Raises:
        ValueError: naming ``latent``, ``locked`` (``locked_field``), ``moves``,
            ``locality``, ``hold_references`` or ``realism``.
    """
    table = pipeline.table
    if not isinstance(start, np.ndarray):
        start = np.stack([parse_latent(z, table.latent_size, "latent") for z in start])
    if start.ndim != 2 or start.shape[1] != table.latent_size:
        raise ValueError(f"latent: expected {table.latent_size} numbers, got "
                         f"{start.shape[1:]}")
    if locked and pipeline.bundle is None and not table.custom_rows:
        raise ValueError(f"{locked_field}: this service has no axis bundle loaded")
    locks = table.check_locks(locked, locked_field)
    rows, dists = table.check_moves(moves)
    moved = (table.move(start, rows, dists, locks) if moves or locked
             else start.astype(np.float32, copy=True))
    local = table.resolve_locality(locality) and table.locality_mask(moves) is not None
    if check is not None:
        check(moved, "the moved latent")
    attributes = pipeline.attributes
    hold_refs = (resolve_hold_references(table, attributes, hold_references)
                 and any(d != 0 for d in moves.values())
                 and bool(held_references(table, attributes, moves, locked)))
    holds_locks = bool(moves) and bool(held_locks(table, attributes, locked))
    checks = (check_realism and pipeline.critic is not None
              and any(d != 0 for d in moves.values()))
    real = resolve_realism(pipeline.critic is not None, realism) and checks
    return EditPlan(pipeline, start, moved, moves, list(locked), local, hold_refs,
                    holds_locks, with_features, check, real, checks)
