"""Axis bundles: a set of orthogonalized feature axes with statistics and provenance.

Its folder (``axes.npz``, ``config.json`` and what it may ship: ``samples.npz``,
``masks.npz``) is described and read in ``axes.bundle_io``; ``save`` and ``load`` here
write and read a bundle through it, and ``axes.bundle_attach`` ships samples or masks in one.

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

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from axes.axis_edits import checked_axis, orthogonalize_named, with_axis
from axes.bundle_io import (
    DEFAULT_LATENT_SPACE,
    FORMAT_VERSION,
    KIND,
    MASKS_NAME,
    content_id,
    jsonable,
    read_folder,
    read_masks,
    split_stats,
    utc_stamp,
    write_folder,
)
from axes.fitting import FitResult
from axes.maths import REFERENCE_MODES, normalize
from axes.samples import COMPACT_NAME, SampleCache, load_compact
from tlgan_base.artifact import ArtifactError

__all__ = [
    "DEFAULT_REFERENCES",
    "AxisBundle",
    "build_bundle",
    "load",
    "save",
]

DEFAULT_REFERENCES: tuple[str, ...] = ("Male", "Young")
#: how new bundles treat their reference axes (see ``axes.maths.orthogonalize``)
DEFAULT_REFERENCE_MODE = "mutual"
#: provenance keys every bundle carries (missing optional ones are stored as None)
PROVENANCE_KEYS: tuple[str, ...] = (
    "generator", "generator_sha256", "latent_size", "extractor", "extractor_sha256",
    "samples_id", "n", "seed", "method", "created",
)


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
        prov = jsonable(dict(self.provenance), "provenance")
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
        return content_id(self.names, self.references, self.provenance, self.latent_space,
                          (self.directions, self.raw_directions, self.calibration))

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
        return read_masks(self.source / MASKS_NAME, self.names)

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
        raw, new_stats, held_list = checked_axis(name, raw_direction, stats, held,
                                                 self.latent_size, self.names, self.references)
        names, raws, directions, all_stats = with_axis(
            self.names, self.raw_directions, self.directions, self.stats, self.references,
            self.reference_mode, name, raw, new_stats, held_list)
        prov = dict(self.provenance)
        prov["added_axes"] = [*prov.get("added_axes", []),
                              {"name": name, "created": utc_stamp()}]
        return dataclasses.replace(self, names=names, directions=directions,
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
        return dataclasses.replace(self, stats=stats,
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


def _normalize_stats(stats: Mapping[str, Any], i: int) -> dict[str, Any]:
    if not isinstance(stats, Mapping):
        raise ValueError(f"stats[{i}] must be a mapping, got {type(stats).__name__}")
    arrays = {k: np.array(v) for k, v in stats.items() if isinstance(v, np.ndarray)}
    for a in arrays.values():
        a.setflags(write=False)
    plain = jsonable({k: v for k, v in stats.items() if k not in arrays}, f"stats[{i}]")
    return {k: arrays[k] if k in arrays else plain[str(k)] for k in stats}


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
    prov.setdefault("created", utc_stamp())
    prov.setdefault("holdout", fit_result.holdout)
    for key in PROVENANCE_KEYS:
        prov.setdefault(key, None)
    raws = normalize(fit_result.axes, name="fit_result.axes")
    directions = orthogonalize_named(raws, fit_result.names, refs, reference_mode)
    return AxisBundle(names=list(fit_result.names), directions=directions.astype(np.float32),
                      raw_directions=raws.astype(np.float32), references=refs,
                      stats=[dict(s) for s in fit_result.stats], provenance=prov,
                      latent_space=latent_space)


def save(bundle: AxisBundle, folder: str | Path) -> Path:
    """Write ``bundle`` to the artifact folder ``folder`` atomically; return its path."""
    json_stats, stat_arrays = split_stats(bundle.stats)
    arrays: dict[str, NDArray[Any]] = {
        "directions": np.asarray(bundle.directions),
        "raw_directions": np.asarray(bundle.raw_directions),
        **stat_arrays,
    }
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
    shipped: dict[str, tuple[Path, dict[str, Any]]] = {}
    if bundle.has_samples and bundle.source and bundle.samples_meta is not None:
        shipped["samples"] = (bundle.source / COMPACT_NAME, bundle.samples_meta)
    if bundle.has_masks and bundle.source and bundle.masks_meta is not None:
        shipped["masks"] = (bundle.source / MASKS_NAME, bundle.masks_meta)
    return write_folder(Path(folder), arrays, config, shipped)


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
    fields, recorded_id = read_folder(
        folder, generator=expect_generator, latent_size=expect_latent_size,
        extractor=expect_extractor, generator_sha256=expect_generator_sha256,
        extractor_sha256=expect_extractor_sha256, spaces=expect_spaces)
    try:
        bundle = AxisBundle(**fields)
    except ValueError as exc:
        raise ArtifactError(f"{folder} holds an invalid axis bundle: {exc}") from exc
    if bundle.id != recorded_id:
        raise ArtifactError(f"{folder}: content id {bundle.id} does not match the id "
                            f"{recorded_id} recorded in config.json (edited by hand?)")
    return bundle
