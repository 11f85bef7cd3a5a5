"""The axis table of a pipeline: the bundle's axes and a request's own, moves along them,
and the masks local edits blend with.

Validation messages name the request fields (``moves``, ``locked``, ``custom_axes.<name>``,
``locality``) because these are what callers pass through.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from axes.bundle import AxisBundle
from axes.maths import apply_moves
from tlgan.generators.base import FaceGenerator
from tlgan.latents import DEFAULT_SPACE
from tlgan.pipeline.locality import blend_mask, supports_locality
from tlgan_base.domain_errors import clip, shown

__all__ = ["MAX_CUSTOM_AXES", "AxisTable"]

#: most axes of a request's own (``custom_axes``)
MAX_CUSTOM_AXES = 32


@dataclass
class AxisTable:
    """Unit axes (K, L) by name: the bundle's, then a request's own (``custom_rows``: row
    -> logit slope along it), with the bundle's local-edit masks (``no_locality`` says why
    there are none)."""

    bundle: AxisBundle | None
    latent_size: int
    resolution: int
    axes: np.ndarray
    index: dict[str, int] = field(default_factory=dict)
    custom_rows: dict[int, float] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    no_locality: str | None = None

    @classmethod
    def build(cls, generator: FaceGenerator, bundle: AxisBundle | None,
              space: str = DEFAULT_SPACE) -> AxisTable:
        """The table of ``bundle``'s axes for ``generator`` (latents of ``space``, the
        bundle's). ValueError naming ``bundle`` when they do not fit the generator."""
        if bundle is None:
            return cls(None, generator.latent_size, generator.resolution,
                       np.zeros((0, generator.latent_size), np.float32),
                       no_locality=_NO_MASKS)
        size = generator.space_sizes()[space]
        dirs = np.asarray(bundle.directions)
        if dirs.ndim != 2 or dirs.shape[1] != size:
            raise ValueError(
                f"bundle: axes have latent size {dirs.shape[-1]}, generator "
                f"{generator.name!r} has {size}"
            )
        table = cls(bundle, size, generator.resolution, dirs.astype(np.float32),
                    {n: i for i, n in enumerate(bundle.names)})
        table.no_locality = table._load_masks(generator, space)
        return table

    def _load_masks(self, generator: FaceGenerator, space: str) -> str | None:
        """Load the bundle's local-edit masks; return why local edits are unavailable (None
        when they are available)."""
        if self.bundle is None or not self.bundle.has_masks:
            return _NO_MASKS
        if not supports_locality(generator, space):
            return (f"generator {generator.name!r} does not support local edits (DCGAN "
                    "generators, latents in z)")
        meta = self.bundle.masks_meta or {}
        if (meta.get("generator_sha256") != generator.sha256
                or meta.get("resolution") != generator.resolution):
            return (f"the bundle's local-edit masks were learned for generator "
                    f"{meta.get('generator')!r} ({str(meta.get('generator_sha256'))[:12]}), "
                    f"not {generator.name!r} ({generator.sha256[:12]})")
        self.masks = self.bundle.load_masks()
        return None

    @property
    def axis_names(self) -> list[str]:
        """The bundle's axis names (a request's own are not listed)."""
        return list(self.bundle.names) if self.bundle is not None else []

    @property
    def references(self) -> list[str]:
        """The bundle's reference axes (gender, age) that are in the table."""
        if self.bundle is None:
            return []
        return [r for r in self.bundle.references if r in self.index]

    def require_bundle(self) -> None:
        """ValueError naming ``moves`` when no bundle is loaded."""
        if self.bundle is None:
            raise ValueError("moves: this service has no axis bundle loaded")

    def axis_index(self, name: str, field_name: str = "moves") -> int:
        """Index of an axis, or ValueError naming the field and listing valid names."""
        if name in self.index:
            return self.index[name]
        self.require_bundle()
        raise ValueError(
            f"{field_name}: unknown axis {shown(name)}; valid axes: "
            f"{', '.join(self.axis_names)}"
        ) from None

    def rows(self, names: Sequence[str]) -> np.ndarray:
        """The axes (K, L) float64 of ``names`` (all in the table)."""
        return self.axes[[self.index[n] for n in names]].astype(np.float64)

    def custom_axes(self, raw: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
        """Validate a request's own axes ``{name: direction}``: at most
        :data:`MAX_CUSTOM_AXES`, each a finite, non-zero vector of the latent's length whose
        name is not one of the bundle's axes. Returns them as unit vectors (float64).

        Raises:
            ValueError: naming ``custom_axes`` or ``custom_axes.<name>``.
        """
        if len(raw) > MAX_CUSTOM_AXES:
            raise ValueError(f"custom_axes: at most {MAX_CUSTOM_AXES} per request, got "
                             f"{len(raw)}")
        out: dict[str, np.ndarray] = {}
        for name, values in raw.items():
            where = f"custom_axes.{clip(name)}"
            if not name.strip():
                raise ValueError("custom_axes: a name must not be empty")
            if name in self.index:
                raise ValueError(f"{where}: the bundle has an axis of this name; choose "
                                 "another name")
            vec = np.asarray(values, dtype=np.float64)
            if vec.shape != (self.latent_size,):
                raise ValueError(f"{where}: expected {self.latent_size} numbers, got "
                                 f"{vec.size}")
            norm = float(np.linalg.norm(vec)) if np.isfinite(vec).all() else math.nan
            if not math.isfinite(norm) or norm == 0.0:
                raise ValueError(f"{where}: the direction must be finite and non-zero")
            out[name] = vec / norm
        return out

    def with_custom(self, custom: Mapping[str, np.ndarray], slopes: Mapping[str, float]
                    ) -> AxisTable:
        """A copy whose table ends with a request's own axes (from :meth:`custom_axes`),
        each with its logit slope."""
        out = copy.copy(self)
        names = list(custom)
        first = len(self.axes)
        out.axes = np.concatenate([self.axes, np.stack(
            [np.asarray(custom[n], dtype=np.float32) for n in names])])
        out.index = {**self.index, **{n: first + i for i, n in enumerate(names)}}
        out.custom_rows = {**self.custom_rows,
                           **{first + i: slopes[n] for i, n in enumerate(names)}}
        return out

    def linear_models(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """For axis rows: the raw direction of each attribute's linear model and its logit
        slope (bundle axes: the GLM's; a request's own: its direction and fitted slope)."""
        raw, coef = [], []
        for r in rows:
            if r in self.custom_rows:
                raw.append(self.axes[r].astype(np.float64))
                coef.append(self.custom_rows[r])
            else:
                assert self.bundle is not None
                raw.append(np.asarray(self.bundle.raw_directions[r], dtype=np.float64))
                coef.append(float(self.bundle.stats[r].get("coef_norm") or 0.0))
        return np.array(raw), np.array(coef)

    def check_locks(self, locked: Sequence[str], field_name: str = "locked") -> list[int]:
        """The rows of the locked axes (each once), or ValueError naming ``field_name``."""
        return [self.axis_index(n, field_name) for n in dict.fromkeys(locked)]

    def check_moves(self, moves: Mapping[str, float]) -> tuple[list[int], list[float]]:
        """The rows and distances of ``moves``, or ValueError naming ``moves``."""
        rows, dists = [], []
        for name, dist in moves.items():
            if not isinstance(dist, (int, float)) or not math.isfinite(dist):
                raise ValueError(f"moves.{clip(name)}: distance must be a finite number")
            rows.append(self.axis_index(name, "moves"))
            dists.append(float(dist))
        return rows, dists

    def move(self, z: np.ndarray, rows: Sequence[int], dists: Sequence[float],
             locks: Sequence[int]) -> np.ndarray:
        """Latents (N, L) (or one (L,)) moved by ``dists`` along the axes ``rows``, the
        locked axes ``locks`` projected out of the summed move (float32)."""
        empty = np.zeros((0, self.latent_size))
        dirs = self.axes[list(rows)].astype(np.float64) if rows else empty
        lock_dirs = self.axes[list(locks)].astype(np.float64) if locks else empty
        flat = np.atleast_2d(z)
        moved = np.stack([apply_moves(zi, dirs, np.asarray(dists, np.float64), lock_dirs)
                          for zi in flat]) if len(flat) else flat.astype(np.float64)
        return (moved[0] if z.ndim == 1 else moved).astype(np.float32)

    def edit(self, z: np.ndarray, moves: Mapping[str, float],
             locked: Sequence[str] = ()) -> np.ndarray:
        """Move a latent (L,) by distances along unit axes; locked axes are projected out.

        Several moves add up; locking applies to the summed move (so a locked axis's own
        move is cancelled too).
        """
        if z.shape != (self.latent_size,):
            raise ValueError(f"latent: expected {self.latent_size} numbers, got {z.shape}")
        if not moves and not locked:
            return z.copy()
        rows, dists = self.check_moves(moves)
        return self.move(z, rows, dists, self.check_locks(locked))

    # -- local edits -------------------------------------------------------------------
    @property
    def has_locality(self) -> bool:
        """Whether local edits are available (the bundle ships masks for this generator)."""
        return self.no_locality is None

    @property
    def local_axes(self) -> list[str]:
        """The axes whose moves a local edit confines to their mask (the others are global)."""
        return [n for n in self.axis_names if n in self.masks]

    def resolve_locality(self, locality: bool | None) -> bool:
        """The locality an edit uses: ``None`` means on when available (the default, chosen
        on ``bench/locality.py``); True where it is unavailable is a ValueError naming
        ``locality``."""
        if locality is None:
            return self.has_locality
        if locality and self.no_locality is not None:
            raise ValueError(f"locality: local edits are unavailable: {self.no_locality}")
        return bool(locality)

    def locality_mask(self, moves: Mapping[str, float]) -> np.ndarray | None:
        """The mask (H, W) a local edit with ``moves`` blends with; None when the edit is
        global (a moved axis is global or one of a request's own, or nothing moves)."""
        return blend_mask(self.masks, moves, self.resolution) if self.masks else None


_NO_MASKS = "the axis bundle ships no local-edit masks (`tlgan axes masks` learns them)"
