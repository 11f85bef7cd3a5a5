"""Rendering edits, local or not: the faces of a move from start latents to moved ones,
judged by the models (a local edit renders the moved latents inside the moves' mask over the
start faces: :mod:`tlgan.pipeline.locality`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tlgan.generators.base import to_uint8
from tlgan.pipeline.axis_table import AxisTable
from tlgan.pipeline.control import LOCK_TOLERANCE, Renderer, held_locks
from tlgan.pipeline.locality import render_local
from tlgan.pipeline.models import Models

__all__ = ["edit_renderer", "labelled", "local_locks", "render_edit"]


def labelled(render_and_label: Callable[..., tuple[np.ndarray, np.ndarray | None]]
             ) -> Renderer:
    """A :data:`~tlgan.pipeline.control.Renderer` of ``render_and_label`` (latents cast to
    float32, faces labelled)."""

    def render(z: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images, probs = render_and_label(z.astype(np.float32))
        assert probs is not None
        return images, probs

    return render


def edit_renderer(models: Models, start: np.ndarray, mask: np.ndarray | None) -> Renderer:
    """A :data:`~tlgan.pipeline.control.Renderer` of edits from ``start`` (N, L): with a
    ``mask`` (H, W) the latents render inside it over the start faces (a local edit), else
    as :meth:`Models.render_and_label`."""
    if mask is None:
        return labelled(models.render_and_label)
    start32 = start.astype(np.float32)

    def render(z: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = render_local(models.generator, start32[rows], z.astype(np.float32),
                         np.broadcast_to(mask, (len(rows), *mask.shape)))
        return to_uint8(x), models.label_tensor(x)

    return render


def render_edit(models: Models, table: AxisTable, start: np.ndarray, moved: np.ndarray,
                moves: Mapping[str, float], locality: bool, with_features: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """The faces of an edit from ``start`` (N, L) to ``moved`` (N, L) by ``moves``:
    locality off (or a global edit) renders ``moved``, exactly as
    :meth:`Models.render_and_label`; on, the move's effect is kept inside the moved axes'
    mask. Returns uint8 faces and probabilities (or None)."""
    mask = table.locality_mask(moves) if locality else None
    if mask is None:
        return models.render_and_label(moved, with_features)
    masks = np.broadcast_to(mask, (len(moved), *mask.shape))
    x = render_local(models.generator, start, moved, masks)
    return to_uint8(x), (models.label_tensor(x) if with_features else None)


def local_locks(models: Models, table: AxisTable, start: np.ndarray, moved: np.ndarray,
                moves: Mapping[str, float], locked: Sequence[str],
                tolerance: float = LOCK_TOLERANCE
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The local face of an edit from ``start`` (L,) to ``moved`` (L,) (its locks already
    held by :func:`~tlgan.pipeline.control.hold_locks`), its probabilities and the held
    locks whose probability on that face is more than ``tolerance`` from the start face's."""
    held = held_locks(table, models.attributes, locked)
    _, p0 = models.render_and_label(start[None, :].astype(np.float32))
    images, probs = render_edit(models, table, start[None, :], moved[None, :], moves, True)
    assert p0 is not None and probs is not None
    cols = [models.attributes.index(a) for a in held]
    bad = np.abs(probs[0, cols] - p0[0, cols]) > tolerance
    return images, probs, [a for a, b in zip(held, bad, strict=True) if b]
