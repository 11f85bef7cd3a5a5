"""Named axes made orthogonal, and one axis added to them: the array work behind
``axes.bundle.build_bundle`` and ``AxisBundle.add_axis``.

Everything here takes and returns plain arrays and lists (the bundle wraps them); inputs are
never modified, and a bad argument raises ``ValueError`` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from axes.maths import normalize, orthogonalize

__all__ = ["checked_axis", "held_direction", "orthogonalize_named", "with_axis"]


def orthogonalize_named(raws: NDArray[np.float64], names: Sequence[str],
                        references: Sequence[str], mode: str) -> NDArray[np.float64]:
    """``raws`` with every non-reference row projected off the span of the rows named in
    ``references`` (``mode`` as in ``axes.maths.orthogonalize``)."""
    ref_idx = [list(names).index(r) for r in references]
    return orthogonalize(raws, ref_idx, references=mode)


def held_direction(raws: NDArray[np.float64], directions: NDArray[Any], names: Sequence[str],
                   references: Sequence[str], held: Sequence[str],
                   raw: NDArray[np.float64]) -> NDArray[np.float32]:
    """``raw`` made orthogonal to the raw directions of the held references and the
    directions of the other held axes (ValueError when it lies inside their span)."""
    rows = [raws[list(names).index(h)] if h in references
            else np.asarray(directions[list(names).index(h)], dtype=np.float64) for h in held]
    if not rows:
        return normalize(raw, name="raw_direction").astype(np.float32)
    own = orthogonalize(np.vstack([*rows, raw[None]]), list(range(len(rows))))[-1]
    return np.asarray(own, dtype=np.float32)


def checked_axis(name: str, raw_direction: ArrayLike, stats: Mapping[str, Any],
                 held: Sequence[str] | None, latent_size: int, names: Sequence[str],
                 references: Sequence[str]
                 ) -> tuple[NDArray[np.float64], dict[str, Any], list[str] | None]:
    """The arguments of ``AxisBundle.add_axis`` checked: the unit raw direction, the new
    axis' stats (its ``name`` filled in, ``held_references`` set to ``held`` or dropped) and
    ``held`` without repeats (only a non-reference axis may hold some, and only other axes
    among ``names``)."""
    raw = np.asarray(raw_direction, dtype=np.float64)
    if raw.shape != (latent_size,):
        raise ValueError(f"raw_direction must have shape ({latent_size},) (the "
                         f"bundle's latent size), got {raw.shape}")
    raw = normalize(raw, name="raw_direction")
    if not isinstance(stats, Mapping) or stats.get("coef_norm") is None:
        raise ValueError("stats must be a mapping with a 'coef_norm' entry")
    new_stats = dict(stats)
    new_stats.setdefault("name", name)
    new_stats.pop("held_references", None)
    if held is None:
        return raw, new_stats, None
    out = list(dict.fromkeys(str(h) for h in held))
    if name in references:
        raise ValueError(f"held: {name!r} is a reference axis; it holds the other "
                         "references as the bundle does")
    bad = [h for h in out if h not in names or h == name]
    if bad:
        raise ValueError(f"held: {bad[0]!r} is not another axis of the bundle; valid "
                         f"names: {', '.join(n for n in names if n != name)}")
    new_stats["held_references"] = out
    return raw, new_stats, out


def _placed(directions: NDArray[Any], names: Sequence[str], name: str,
            own: NDArray[Any]) -> NDArray[np.float32]:
    """``directions`` with ``own`` as axis ``name``'s row (appended when it is new)."""
    out = np.array(directions)
    if len(names) > len(out):
        return np.vstack([out, own[None]])
    out[list(names).index(name)] = own
    return out


def with_axis(names: Sequence[str], raws: NDArray[Any], directions: NDArray[Any],
              stats: Sequence[Mapping[str, Any]], references: Sequence[str], mode: str,
              name: str, raw: NDArray[np.float64], new_stats: dict[str, Any],
              held: list[str] | None) -> tuple[list[str], NDArray[np.float64],
                                               NDArray[np.float32], list[dict[str, Any]]]:
    """Names, raw directions, directions and stats after adding axis ``name`` (unit ``raw``,
    its ``new_stats``) or replacing it in place.

    A reference replaced re-orthogonalizes every axis (those that hold only some, as their
    ``held_references`` stat records); an axis given ``held`` is made orthogonal to what it
    holds; any other new axis to the references, leaving the existing rows bit-identical.
    """
    names = list(names)
    all_raws = np.asarray(raws, dtype=np.float64).copy()
    all_stats = [dict(s) for s in stats]
    if name in names:
        i = names.index(name)
        all_raws[i] = raw
        all_stats[i] = new_stats
    else:
        names.append(name)
        all_raws = np.vstack([all_raws, raw[None]])
        all_stats.append(new_stats)
    if name in references:  # the reference span changed: redo every axis
        out = orthogonalize_named(all_raws, names, references, mode).astype(np.float32)
        for i, s in enumerate(all_stats):  # axes that hold only some, as recorded
            if isinstance(s.get("held_references"), list):
                out[i] = held_direction(all_raws, out, names, references,
                                        s["held_references"], all_raws[i])
    elif held is not None:
        own = held_direction(all_raws, directions, names, references, held, raw)
        out = _placed(directions, names, name, own)
    else:  # existing axes stay bit-identical; only the new one is orthogonalized
        ref_rows = all_raws[[names.index(r) for r in references]]
        own = orthogonalize(np.vstack([ref_rows, raw[None]]),
                            list(range(len(ref_rows))))[-1].astype(np.float32)
        out = _placed(directions, names, name, own)
    return names, all_raws, out, all_stats
