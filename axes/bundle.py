"""Axis bundles: a set of orthogonalized feature axes with statistics and provenance.

On disk an axis bundle is an artifact folder (see ``tlgan_base.artifact``)::

    <folder>/axes.npz     directions (K, L) float32, raw_directions (K, L) float32 and every
                          array-valued per-axis statistic as ``stats.<i>.<key>``
    <folder>/samples.npz  optional: a compact subset of the sample cache the axes were
                          fitted on (float16 z, probs, embeddings; ``attach_samples``), so new
                          axes can be fitted without the full cache
    <folder>/config.json  kind "axis-bundle", id, names, references, latent_size,
                          latent_space, provenance, the JSON-valued per-axis statistics,
                          ``samples`` (the subset's provenance: cache id/path, rows, seed,
                          dtype, sha256), ``masks`` (the local-edit masks' recipe and
                          provenance) and the sha256 of every file
    <folder>/masks.npz    optional: one spatial mask (H, W) in [0, 1] per local axis, where a
                          local edit lets that axis's move change the face
                          (``attach_masks``, learned by ``tlgan.locality.learn_masks``)

Added axes may carry a ``head`` stat (``axes.heads.Head.to_dict``: a classifier on the
extractor's embeddings); a pipeline labels faces with it like an extractor attribute.

``latent_space`` names the generator's latent space the axes live in: ``"z"`` (its input; the
default, and what a config.json without the key means) or e.g. ``"w"`` (a mapping network's
output). A bundle loads only with a generator that has that space.

``directions`` are the raw GLM axes with every non-reference axis projected off the span of
the reference axes (e.g. Male, Young; see ``axes.maths.orthogonalize``) -- always on. Since
format 1.1 the reference axes are also disentangled from each other (each projected off the
span of the other references, order-free; ``provenance["reference_orthogonalization"] ==
"mutual"``); bundles without that key keep their references as fitted (``"keep"``).

An added axis may hold only some of the references (or other axes): its ``held_references``
stat (a list of axis names; ``AxisBundle.add_axis(..., held=...)``) says which; its direction
is orthogonal to their raw directions (references) or directions (other axes) instead of to
every reference. Axes without the stat hold every reference, as before; the stat is additive
(older readers ignore it, and its directions are stored as they are).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from axes.fitting import FitResult
from axes.maths import REFERENCE_MODES, normalize, orthogonalize
from axes.samples import COMPACT_NAME, SampleCache, load_compact, write_compact
from tlgan_base.artifact import (
    ArtifactError,
    atomic_artifact_dir,
    load_config,
    save_config,
    sha256_file,
)

__all__ = [
    "ARRAYS_NAME",
    "DEFAULT_REFERENCES",
    "KIND",
    "AxisBundle",
    "attach_masks",
    "attach_samples",
    "build_bundle",
    "load",
    "save",
]

KIND = "axis-bundle"
ARRAYS_NAME = "axes.npz"
#: the local-edit masks a bundle may ship (``attach_masks``; learned by ``tlgan.locality``)
MASKS_NAME = "masks.npz"
FORMAT_VERSION = 1
DEFAULT_REFERENCES: tuple[str, ...] = ("Male", "Young")
#: the latent space of bundles that name none (every bundle written before spaces existed)
DEFAULT_LATENT_SPACE = "z"
#: how new bundles treat their reference axes (see ``axes.maths.orthogonalize``)
DEFAULT_REFERENCE_MODE = "mutual"
#: provenance keys every bundle carries (missing optional ones are stored as None)
PROVENANCE_KEYS: tuple[str, ...] = (
    "generator", "generator_sha256", "latent_size", "extractor", "extractor_sha256",
    "samples_id", "n", "seed", "method", "created",
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _frozen(arr: ArrayLike, dtype: type[np.floating[Any]]) -> NDArray[Any]:
    out = np.array(arr, dtype=dtype)  # copy
    out.setflags(write=False)
    return out


def _stats_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if set(a) != set(b):
        return False
    for key, va in a.items():
        vb = b[key]
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            if not (isinstance(va, np.ndarray) and isinstance(vb, np.ndarray)
                    and va.dtype == vb.dtype and np.array_equal(va, vb)):
                return False
        elif va != vb:
            return False
    return True


@dataclass(frozen=True, eq=False)
class AxisBundle:
    """Orthogonalized feature axes, one per name; immutable (methods return new bundles).

    Attributes:
        names: axis (attribute) names, unique.
        directions: ``(K, L)`` float32 unit rows after orthogonalization (read-only).
        raw_directions: ``(K, L)`` float32 unit rows before orthogonalization (read-only).
        references: names of the reference axes the others are orthogonal to.
        stats: per-axis statistics dicts (see ``axes.fitting.FitResult.stats``); values are
            JSON values or numpy arrays. ``coef_norm`` (logit per unit z along the raw axis)
            is needed for ``calibration``.
        provenance: generator / extractor names and sha256, latent_size, samples_id, n, seed,
            method, created, ...
        latent_space: the generator latent space the axes live in (``"z"`` by default).
        samples_meta: provenance of the shipped compact sample subset (``samples.npz``:
            which cache, rows, dtype, sha256), or None when the bundle ships none.
        source: the folder the bundle was loaded from (None when built in memory).
    """

    names: list[str]
    directions: NDArray[np.float32]
    raw_directions: NDArray[np.float32]
    references: list[str]
    stats: list[dict[str, Any]]
    provenance: dict[str, Any] = field(default_factory=dict)
    latent_space: str = DEFAULT_LATENT_SPACE
    #: the compact sample subset the bundle ships (config ``samples``; None: none) and the
    #: folder it was loaded from (where ``samples.npz`` lies); not part of the content id
    samples_meta: dict[str, Any] | None = None
    source: Path | None = None
    #: the spatial masks of local edits the bundle ships (config ``masks``: recipe, the
    #: generator they were learned for, per-axis area or why the axis is global; the arrays
    #: in ``masks.npz``; None: none); not part of the content id
    masks_meta: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.latent_space, str) or not self.latent_space.isidentifier():
            raise ValueError(f"latent_space must be a space name like 'z' or 'w', got "
                             f"{self.latent_space!r}")
        names = [str(n) for n in self.names]
        if not names:
            raise ValueError("names must not be empty")
        if len(set(names)) != len(names):
            raise ValueError(f"names must be unique, got {names}")
        d = _frozen(self.directions, np.float32)
        r = _frozen(self.raw_directions, np.float32)
        if d.ndim != 2 or d.shape[0] != len(names) or d.shape[1] == 0:
            raise ValueError(f"directions must have shape ({len(names)}, L), got {d.shape}")
        if r.shape != d.shape:
            raise ValueError(f"raw_directions must have shape {d.shape}, got {r.shape}")
        if not (np.all(np.isfinite(d)) and np.all(np.isfinite(r))):
            raise ValueError("directions and raw_directions must be finite")
        refs = [str(x) for x in self.references]
        missing = [x for x in refs if x not in names]
        if missing:
            raise ValueError(f"references {missing} are not among the axis names {names}")
        if len(self.stats) != len(names):
            raise ValueError(f"stats must have {len(names)} entries (one per axis), got "
                             f"{len(self.stats)}")
        prov = _jsonable(dict(self.provenance), "provenance")
        if prov.get("latent_size") not in (None, d.shape[1]):
            raise ValueError(f"provenance latent_size {prov['latent_size']} does not match the "
                             f"directions' latent size {d.shape[1]}")
        prov["latent_size"] = int(d.shape[1])
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "directions", d)
        object.__setattr__(self, "raw_directions", r)
        object.__setattr__(self, "references", refs)
        object.__setattr__(self, "stats", [_normalize_stats(s, i)
                                           for i, s in enumerate(self.stats)])
        object.__setattr__(self, "provenance", prov)

    # ------------------------------------------------------------------ basics
    @property
    def latent_size(self) -> int:
        """L, the latent size the axes live in."""
        return int(self.directions.shape[1])

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AxisBundle):
            return NotImplemented
        return (self.names == other.names and self.references == other.references
                and self.provenance == other.provenance
                and self.latent_space == other.latent_space
                and np.array_equal(self.directions, other.directions)
                and np.array_equal(self.raw_directions, other.raw_directions)
                and all(_stats_equal(a, b) for a, b in zip(self.stats, other.stats,
                                                           strict=True)))

    __hash__ = None  # type: ignore[assignment]

    @cached_property
    def id(self) -> str:
        """Short content hash (12 hex) of names, references, directions, calibration,
        provenance (without its ``created`` time) and the latent space (when not ``"z"``, so
        z bundles keep the ids they always had)."""
        h = hashlib.sha256()
        prov = {k: v for k, v in self.provenance.items() if k != "created"}
        head: dict[str, Any] = {"names": self.names, "references": self.references,
                                "provenance": prov}
        if self.latent_space != DEFAULT_LATENT_SPACE:
            head["latent_space"] = self.latent_space
        h.update(json.dumps(head, sort_keys=True, default=str).encode())
        h.update(np.ascontiguousarray(self.directions, dtype="<f4").tobytes())
        h.update(np.ascontiguousarray(self.raw_directions, dtype="<f4").tobytes())
        h.update(np.ascontiguousarray(self.calibration, dtype="<f4").tobytes())
        return h.hexdigest()[:12]

    def index(self, name: str) -> int:
        """Row of axis ``name``; ValueError listing the valid names otherwise."""
        if name not in self.names:
            raise ValueError(f"name {name!r} is not an axis of this bundle; valid names: "
                             f"{', '.join(self.names)}")
        return self.names.index(name)

    def direction(self, name: str) -> NDArray[np.float32]:
        """The orthogonalized unit direction ``(L,)`` of axis ``name``."""
        return self.directions[self.index(name)]

    @property
    def reference_mode(self) -> str:
        """How the reference axes were orthogonalized: ``"mutual"`` or ``"keep"`` (bundles
        written before the choice existed)."""
        return str(self.provenance.get("reference_orthogonalization") or "keep")

    @property
    def calibration(self) -> NDArray[np.float64]:
        """``(K,)`` change of each axis' attribute logit per unit step along its
        orthogonalized axis: ``coef . axis = coef_norm * (raw . axis)``; NaN without
        ``coef_norm``."""
        dots = np.sum(self.raw_directions.astype(np.float64)
                      * self.directions.astype(np.float64), axis=1)
        norms = np.array([float(s["coef_norm"]) if s.get("coef_norm") is not None
                          else np.nan for s in self.stats])
        out: NDArray[np.float64] = norms * dots
        return out

    # ------------------------------------------------------------------ shipped samples
    @property
    def has_samples(self) -> bool:
        """True when the bundle ships a compact sample subset that is on disk."""
        return (self.samples_meta is not None and self.source is not None
                and (self.source / COMPACT_NAME).is_file())

    def load_samples(self) -> SampleCache:
        """The shipped compact sample subset (z, probs, embeddings) as a ``SampleCache``.

        Raises:
            ArtifactError: the bundle ships none (or it is not on disk).
        """
        if not self.has_samples:
            raise ArtifactError(f"samples: bundle {self.source or self.id} ships no sample "
                                f"subset ({COMPACT_NAME}); pass a sample cache (--samples) or "
                                "attach one with `tlgan axes ship-samples`")
        assert self.source is not None and self.samples_meta is not None
        return load_compact(self.source / COMPACT_NAME, self.samples_meta)

    @property
    def has_masks(self) -> bool:
        """True when the bundle ships local-edit masks that are on disk."""
        return (self.masks_meta is not None and self.source is not None
                and (self.source / MASKS_NAME).is_file())

    def load_masks(self) -> dict[str, NDArray[np.float32]]:
        """The shipped local-edit masks {axis: (H, W) float32 in [0, 1]} (global axes have
        none; see ``masks_meta``).

        Raises:
            ArtifactError: the bundle ships none, or the file does not match its metadata.
        """
        if not self.has_masks:
            raise ArtifactError(f"locality: bundle {self.source or self.id} ships no "
                                f"local-edit masks ({MASKS_NAME}); learn them with "
                                "`tlgan axes masks`")
        assert self.source is not None
        path = self.source / MASKS_NAME
        try:
            with np.load(path, allow_pickle=False) as npz:
                masks = {k: np.asarray(npz[k], np.float32) for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ArtifactError(f"{path} is not a readable npz file: {exc}") from exc
        for name, m in masks.items():
            if name not in self.names:
                raise ArtifactError(f"{path}: mask {name!r} names no axis of the bundle")
            if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.isfinite(m).all():
                raise ArtifactError(f"{path}: mask {name!r} must be a finite square array")
        return masks

    def head(self, name: str) -> dict[str, Any] | None:
        """The head (classifier on extractor embeddings, ``axes.heads.Head.to_dict``) that
        axis ``name`` carries, or None."""
        head = self.stats[self.index(name)].get("head")
        return head if isinstance(head, dict) else None

    def held_references(self, name: str) -> list[str]:
        """The axes ``name`` is orthogonal to: its ``held_references`` stat when it was added
        holding only some (see ``add_axis``), else the bundle's references (for a reference:
        the others when they are mutually orthogonalized)."""
        i = self.index(name)
        held = self.stats[i].get("held_references")
        if isinstance(held, list):
            return [str(h) for h in held]
        if name in self.references:
            return ([r for r in self.references if r != name]
                    if self.reference_mode == "mutual" else [])
        return list(self.references)

    def _carry(self, **changes: Any) -> AxisBundle:
        """A new bundle with ``changes`` and the shipped samples / source carried over."""
        fields: dict[str, Any] = {"names": self.names, "directions": self.directions,
                  "raw_directions": self.raw_directions, "references": self.references,
                  "stats": self.stats, "provenance": self.provenance,
                  "latent_space": self.latent_space, "samples_meta": self.samples_meta,
                  "source": self.source, "masks_meta": self.masks_meta}
        fields.update(changes)
        return AxisBundle(**fields)

    # ------------------------------------------------------------------ edits
    def add_axis(self, name: str, raw_direction: ArrayLike,
                 stats: Mapping[str, Any], held: Sequence[str] | None = None) -> AxisBundle:
        """Return a new bundle with axis ``name`` added (or replaced, keeping its position).

        ``raw_direction`` ``(L,)`` is normalized and orthogonalized against the references
        (if ``name`` is itself a reference, every other axis is re-orthogonalized).
        ``held``: the axes the new one holds instead (None: every reference); it is made
        orthogonal to their raw directions (references) or directions (other axes), and the
        list is recorded as its ``held_references`` stat (kept when a reference is replaced).
        ``stats`` must hold ``coef_norm`` (logit per unit z along ``raw_direction``).

        Raises:
            ValueError: wrong shape/zero ``raw_direction``, ``stats`` without ``coef_norm``,
                a direction inside the span of what it holds, or ``held`` naming an unknown
                axis, the axis itself, or given for a reference axis.
        """
        name = str(name)
        raw = np.asarray(raw_direction, dtype=np.float64)
        if raw.shape != (self.latent_size,):
            raise ValueError(f"raw_direction must have shape ({self.latent_size},) (the "
                             f"bundle's latent size), got {raw.shape}")
        raw = normalize(raw, name="raw_direction")
        if not isinstance(stats, Mapping) or stats.get("coef_norm") is None:
            raise ValueError("stats must be a mapping with a 'coef_norm' entry")
        new_stats = dict(stats)
        new_stats.setdefault("name", name)
        new_stats.pop("held_references", None)
        if held is not None:
            held = list(dict.fromkeys(str(h) for h in held))
            if name in self.references:
                raise ValueError(f"held: {name!r} is a reference axis; it holds the other "
                                 "references as the bundle does")
            bad = [h for h in held if h not in self.names or h == name]
            if bad:
                raise ValueError(f"held: {bad[0]!r} is not another axis of the bundle; valid "
                                 f"names: {', '.join(n for n in self.names if n != name)}")
            new_stats["held_references"] = held
        names = list(self.names)
        raws = self.raw_directions.astype(np.float64)
        all_stats = [dict(s) for s in self.stats]
        if name in names:
            i = names.index(name)
            raws[i] = raw
            all_stats[i] = new_stats
        else:
            names.append(name)
            raws = np.vstack([raws, raw[None]])
            all_stats.append(new_stats)
        if name in self.references:  # the reference span changed: redo every axis
            directions = _orthogonalize_named(raws, names, self.references,
                                              self.reference_mode).astype(np.float32)
            for i, s in enumerate(all_stats):  # axes that hold only some, as recorded
                if isinstance(s.get("held_references"), list):
                    directions[i] = _held_direction(raws, directions, names, self.references,
                                                    s["held_references"], raws[i])
        elif held is not None:
            own = _held_direction(raws, self.directions, names, self.references, held, raw)
            directions = np.array(self.directions)
            if len(names) > len(directions):
                directions = np.vstack([directions, own[None]])
            else:
                directions[names.index(name)] = own
        else:  # existing axes stay bit-identical; only the new one is orthogonalized
            ref_rows = raws[[names.index(r) for r in self.references]]
            own = orthogonalize(np.vstack([ref_rows, raw[None]]),
                                list(range(len(ref_rows))))[-1].astype(np.float32)
            directions = np.array(self.directions)
            if len(names) > len(directions):
                directions = np.vstack([directions, own[None]])
            else:
                directions[names.index(name)] = own
        prov = dict(self.provenance)
        prov["added_axes"] = [*prov.get("added_axes", []), {"name": name, "created": _now()}]
        return self._carry(names=names, directions=directions,
                           raw_directions=raws.astype(np.float32), stats=all_stats,
                           provenance=prov)

    def with_stats(self, updates: Mapping[str, Mapping[str, Any]],
                   provenance: Mapping[str, Any] | None = None) -> AxisBundle:
        """Return a new bundle whose axes' stats are updated with ``updates[name]`` (JSON
        values) and whose provenance is updated with ``provenance``; directions unchanged.

        Raises:
            ValueError: ``updates`` names an axis the bundle does not have.
        """
        unknown = [n for n in updates if n not in self.names]
        if unknown:
            raise ValueError(f"updates: unknown axes {unknown}; valid names: "
                             f"{', '.join(self.names)}")
        stats = [{**s, **dict(updates.get(n, {}))} for n, s in zip(self.names, self.stats,
                                                                    strict=True)]
        return self._carry(stats=stats,
                           provenance={**self.provenance, **dict(provenance or {})})

    # ------------------------------------------------------------------ disk
    def save(self, folder: str | Path) -> Path:
        """Write the bundle atomically to ``folder`` (replacing it); return the path."""
        return save(self, folder)

    @classmethod
    def load(cls, folder: str | Path, expect_generator: str | None = None,
             expect_latent_size: int | None = None,
             expect_extractor: str | None = None) -> AxisBundle:
        """Same as the module function ``load``."""
        return load(folder, expect_generator, expect_latent_size, expect_extractor)


def _jsonable(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """Round-trip ``obj`` through JSON (numpy scalars -> Python, tuples -> lists)."""
    try:
        out: dict[str, Any] = json.loads(json.dumps(obj, default=_json_check))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold JSON values only: {exc}") from exc
    return out


def _normalize_stats(stats: Mapping[str, Any], i: int) -> dict[str, Any]:
    if not isinstance(stats, Mapping):
        raise ValueError(f"stats[{i}] must be a mapping, got {type(stats).__name__}")
    arrays = {k: np.array(v) for k, v in stats.items() if isinstance(v, np.ndarray)}
    for a in arrays.values():
        a.setflags(write=False)
    plain = _jsonable({k: v for k, v in stats.items() if k not in arrays}, f"stats[{i}]")
    return {k: arrays[k] if k in arrays else plain[str(k)] for k in stats}


def _held_direction(raws: NDArray[np.float64], directions: NDArray[Any], names: Sequence[str],
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


def _orthogonalize_named(raws: NDArray[np.float64], names: Sequence[str],
                         references: Sequence[str], mode: str) -> NDArray[np.float64]:
    ref_idx = [list(names).index(r) for r in references]
    return orthogonalize(raws, ref_idx, references=mode)


def build_bundle(fit_result: FitResult, references: Sequence[str] = DEFAULT_REFERENCES,
                 provenance: Mapping[str, Any] | None = None, *,
                 reference_mode: str = DEFAULT_REFERENCE_MODE,
                 latent_space: str = DEFAULT_LATENT_SPACE) -> AxisBundle:
    """Orthogonalize a ``FitResult`` against ``references`` into an ``AxisBundle``.

    Args:
        fit_result: from ``axes.fitting.fit_axes``.
        references: names of the reference axes (others are projected off their span). May
            be empty; otherwise every name must be fitted.
        reference_mode: ``"mutual"`` (default): each reference is projected off the span of
            the other references, so moving one holds the others; ``"keep"``: references
            stay as fitted. Recorded as ``provenance["reference_orthogonalization"]``.
        provenance: must name ``generator`` and ``extractor``; ``n``, ``seed``, ``method``,
            ``latent_size`` and ``created`` are filled from ``fit_result`` / now when absent,
            the other ``PROVENANCE_KEYS`` default to None. Extra keys are kept.
        latent_space: the generator latent space the fitted latents live in.

    Raises:
        ValueError: an unknown reference (message lists the valid names), a provenance
            missing generator/extractor or disagreeing with ``fit_result``, or an axis lying
            inside the span of the references.
    """
    refs = [str(r) for r in references]
    unknown = [r for r in refs if r not in fit_result.names]
    if unknown:
        raise ValueError(f"references {unknown} are not fitted axes; valid names: "
                         f"{', '.join(fit_result.names)}")
    if len(set(refs)) != len(refs):
        raise ValueError(f"references has repeated names: {refs}")
    if reference_mode not in REFERENCE_MODES:
        raise ValueError(f"reference_mode must be one of {REFERENCE_MODES}, got "
                         f"{reference_mode!r}")
    prov: dict[str, Any] = dict(provenance or {})
    prov["reference_orthogonalization"] = reference_mode
    for key in ("generator", "extractor"):
        if not prov.get(key):
            raise ValueError(f"provenance must name the {key!r} the axes were fitted for")
    filled = {"latent_size": fit_result.latent_size, "n": fit_result.n,
              "seed": fit_result.seed, "method": fit_result.method}
    for key, value in filled.items():
        if prov.get(key) is not None and prov[key] != value:
            raise ValueError(f"provenance {key}={prov[key]!r} disagrees with the fit result "
                             f"({value!r})")
        prov[key] = value
    prov.setdefault("created", _now())
    prov.setdefault("holdout", fit_result.holdout)
    for key in PROVENANCE_KEYS:
        prov.setdefault(key, None)
    raws = normalize(fit_result.axes, name="fit_result.axes")
    directions = _orthogonalize_named(raws, fit_result.names, refs, reference_mode)
    return AxisBundle(names=list(fit_result.names), directions=directions.astype(np.float32),
                      raw_directions=raws.astype(np.float32), references=refs,
                      stats=[dict(s) for s in fit_result.stats], provenance=prov,
                      latent_space=latent_space)


def save(bundle: AxisBundle, folder: str | Path) -> Path:
    """Write ``bundle`` to the artifact folder ``folder`` atomically; return its path."""
    folder = Path(folder)
    arrays: dict[str, NDArray[Any]] = {
        "directions": np.asarray(bundle.directions),
        "raw_directions": np.asarray(bundle.raw_directions),
    }
    json_stats: list[dict[str, Any]] = []
    for i, s in enumerate(bundle.stats):
        plain: dict[str, Any] = {}
        for key, value in s.items():
            if isinstance(value, np.ndarray):
                arrays[f"stats.{i}.{key}"] = value
            else:
                plain[key] = value
        json_stats.append(plain)
    config = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "id": bundle.id,
        "names": bundle.names,
        "references": bundle.references,
        "latent_size": bundle.latent_size,
        "latent_space": bundle.latent_space,
        "provenance": bundle.provenance,
        "stats": json_stats,
    }
    samples = bundle.source / COMPACT_NAME if bundle.has_samples and bundle.source else None
    masks = bundle.source / MASKS_NAME if bundle.has_masks and bundle.source else None
    with atomic_artifact_dir(folder) as tmp:
        with open(tmp / ARRAYS_NAME, "wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
        if samples is not None:  # the shipped sample subset travels with the bundle
            shutil.copyfile(samples, tmp / COMPACT_NAME)
            config["samples"] = bundle.samples_meta
        if masks is not None:  # so do the local-edit masks
            shutil.copyfile(masks, tmp / MASKS_NAME)
            config["masks"] = bundle.masks_meta
        save_config(tmp, config)
    return folder


def attach_masks(folder: str | Path, masks: Mapping[str, ArrayLike],
                 meta: Mapping[str, Any]) -> AxisBundle:
    """Ship local-edit masks ({axis: (H, W) in [0, 1]}) in the bundle folder ``folder`` as
    ``masks.npz`` with ``meta`` (recipe, the generator they were learned for, per-axis notes)
    in config.json ``masks``; rewrites the folder atomically (the content id is unchanged)
    and returns the reloaded bundle.

    Raises:
        ValueError: a mask names no axis, or is not a square array of values in [0, 1].
    """
    folder = Path(folder)
    bundle = load(folder)
    arrays: dict[str, NDArray[np.float32]] = {}
    for name, m in masks.items():
        arr = np.asarray(m, dtype=np.float32)
        if name not in bundle.names:
            raise ValueError(f"masks: {name!r} names no axis of the bundle")
        if (arr.ndim != 2 or arr.shape[0] != arr.shape[1] or not np.isfinite(arr).all()
                or arr.min() < 0 or arr.max() > 1):
            raise ValueError(f"masks.{name}: must be a square array of values in [0, 1]")
        arrays[name] = arr
    with tempfile.TemporaryDirectory() as tmpdir:
        path = Path(tmpdir) / MASKS_NAME
        with open(path, "wb") as fh:
            np.savez_compressed(fh, allow_pickle=False, **arrays)
        full = {**_jsonable(dict(meta), "masks"), "file": MASKS_NAME,
                "sha256": sha256_file(path), "created": _now()}
        if bundle.has_samples and bundle.source is not None:
            shutil.copyfile(bundle.source / COMPACT_NAME, Path(tmpdir) / COMPACT_NAME)
        save(bundle._carry(masks_meta=full, source=Path(tmpdir)), folder)
    return load(folder)


def attach_samples(folder: str | Path, cache: SampleCache, rows: Sequence[int] | int, *,
                   source: str | None = None) -> AxisBundle:
    """Ship a compact subset of ``cache`` (rows ``rows``, or the first ``rows`` rows) in the
    bundle folder ``folder`` as ``samples.npz`` (float16 z, probabilities and embeddings,
    compressed) with its provenance in config.json ``samples``; rewrites the folder
    atomically and returns the reloaded bundle.

    Raises:
        ValueError: rows out of range, or a cache of another generator / extractor / latent
            space than the bundle's (naming the field).
    """
    folder = Path(folder)
    bundle = load(folder)
    idx = np.arange(rows) if isinstance(rows, int | np.integer) else np.asarray(rows)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= cache.n:
        raise ValueError(f"rows: must select 1..{cache.n} rows of the cache")
    for key in ("generator", "extractor"):
        if cache.config.get(key) != bundle.provenance.get(key):
            raise ValueError(f"samples: the cache was made with {key} "
                             f"{cache.config.get(key)!r}, the bundle with "
                             f"{bundle.provenance.get(key)!r}")
    if cache.latent_space != bundle.latent_space:
        raise ValueError(f"samples: the cache holds {cache.latent_space!r} latents, the "
                         f"bundle's axes live in {bundle.latent_space!r}")
    contiguous = bool(np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)))
    cfg = cache.config
    with tempfile.TemporaryDirectory() as tmpdir:
        path = write_compact(Path(tmpdir) / COMPACT_NAME, np.asarray(cache.z)[idx],
                             np.asarray(cache.probs)[idx], np.asarray(cache.embeddings)[idx])
        meta = {
            "file": COMPACT_NAME, "n": int(idx.size), "dtype": "float16",
            "sha256": sha256_file(path),
            "rows": ([int(idx[0]), int(idx[0] + idx.size)] if contiguous
                     else "see rows_list"),
            "seeds": ("sample i is the face of seed cache_seed + row" if contiguous
                      else None),
            "cache_id": cache.id, "cache_path": source or None, "cache_n": cache.n,
            "cache_seed": cfg.get("seed"), "truncation": cfg.get("truncation"),
            "generator": cfg.get("generator"), "extractor": cfg.get("extractor"),
            "latent_space": cache.latent_space, "attributes": list(cache.attributes),
            "created": _now(),
        }
        if not contiguous:
            meta["rows_list"] = [int(i) for i in idx]
        if bundle.has_masks and bundle.source is not None:  # the masks stay
            shutil.copyfile(bundle.source / MASKS_NAME, Path(tmpdir) / MASKS_NAME)
        carried = bundle._carry(samples_meta=meta, source=Path(tmpdir))
        save(carried, folder)
    return load(folder)


def _json_check(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _mismatch(folder: Path, what: str, have: Any, want: Any) -> ArtifactError:
    return ArtifactError(
        f"axis bundle {folder} was fitted for {what} {have!r}, but {want!r} is loaded; "
        "refit the axes for it or pick a matching bundle"
    )


def load(folder: str | Path, expect_generator: str | None = None,
         expect_latent_size: int | None = None, expect_extractor: str | None = None, *,
         expect_generator_sha256: str | None = None,
         expect_extractor_sha256: str | None = None,
         expect_spaces: Mapping[str, int] | None = None) -> AxisBundle:
    """Load and verify an axis bundle.

    Checksums (``config["files"]``) and the content id are verified; each ``expect_*`` that
    is given must match the bundle's provenance (sha256s are only compared when the bundle
    records one). ``expect_spaces`` ({space name: latent size}, the generator's spaces) must
    hold the bundle's ``latent_space`` with its latent size; it replaces
    ``expect_latent_size`` (the size of z) when given.

    Raises:
        ArtifactError: missing/corrupt folder or file, wrong kind, id mismatch, or a bundle
            for another generator / latent space / latent size / extractor (message names
            both sides).
    """
    folder = Path(folder)
    config = load_config(folder, kind=KIND)
    prov = config.get("provenance")
    names = config.get("names")
    if not isinstance(prov, dict) or not isinstance(names, list):
        raise ArtifactError(f"{folder}: config.json lacks 'provenance' or 'names'")
    space = config.get("latent_space", DEFAULT_LATENT_SPACE)
    if expect_spaces is not None:
        if space not in expect_spaces:
            raise ArtifactError(
                f"axis bundle {folder} lives in latent space {space!r}, but the loaded "
                f"generator has no such space (it has: {', '.join(expect_spaces)}); refit "
                "the axes for it or pick a matching bundle")
        expect_latent_size = expect_spaces[space]
    if expect_generator is not None and prov.get("generator") != expect_generator:
        raise _mismatch(folder, "generator", prov.get("generator"), expect_generator)
    if (expect_generator_sha256 is not None and prov.get("generator_sha256")
            and prov["generator_sha256"] != expect_generator_sha256):
        raise _mismatch(folder, "generator sha256", prov["generator_sha256"],
                        expect_generator_sha256)
    if expect_latent_size is not None and config.get("latent_size") != expect_latent_size:
        raise _mismatch(folder, "latent size", config.get("latent_size"), expect_latent_size)
    if expect_extractor is not None and prov.get("extractor") != expect_extractor:
        raise _mismatch(folder, "extractor", prov.get("extractor"), expect_extractor)
    if (expect_extractor_sha256 is not None and prov.get("extractor_sha256")
            and prov["extractor_sha256"] != expect_extractor_sha256):
        raise _mismatch(folder, "extractor sha256", prov["extractor_sha256"],
                        expect_extractor_sha256)
    path = folder / ARRAYS_NAME
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{path} is not a readable npz file: {exc}") from exc
    if "directions" not in arrays or "raw_directions" not in arrays:
        raise ArtifactError(f"{path} lacks 'directions' or 'raw_directions'")
    json_stats = config.get("stats")
    if not isinstance(json_stats, list) or len(json_stats) != len(names):
        raise ArtifactError(f"{folder}: config.json 'stats' must have one entry per axis")
    stats = [dict(s) for s in json_stats]
    for key, value in arrays.items():
        if key.startswith("stats."):
            _, idx, stat = key.split(".", 2)
            if not idx.isdigit() or int(idx) >= len(stats):
                raise ArtifactError(f"{path}: array {key!r} names no axis")
            stats[int(idx)][stat] = value
    samples_meta = config.get("samples")
    if samples_meta is not None and (not isinstance(samples_meta, dict)
                                     or COMPACT_NAME not in (config.get("files") or {})):
        raise ArtifactError(f"{folder}: config.json 'samples' names no checksummed "
                            f"{COMPACT_NAME}")
    masks_meta = config.get("masks")
    if masks_meta is not None and (not isinstance(masks_meta, dict)
                                   or MASKS_NAME not in (config.get("files") or {})):
        raise ArtifactError(f"{folder}: config.json 'masks' names no checksummed "
                            f"{MASKS_NAME}")
    try:
        bundle = AxisBundle(names=names, directions=arrays["directions"],
                            raw_directions=arrays["raw_directions"],
                            references=config.get("references", []), stats=stats,
                            provenance=prov, latent_space=space, samples_meta=samples_meta,
                            source=folder.resolve(), masks_meta=masks_meta)
    except ValueError as exc:
        raise ArtifactError(f"{folder} holds an invalid axis bundle: {exc}") from exc
    if bundle.id != config.get("id"):
        raise ArtifactError(f"{folder}: content id {bundle.id} does not match the id "
                            f"{config.get('id')} recorded in config.json (edited by hand?)")
    return bundle
