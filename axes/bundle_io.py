"""The axis bundle's folder: its files, writing one atomically, reading and verifying one.

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
                          (``attach_masks``, learned by ``tlgan.pipeline.locality.learn_masks``)

This module knows the files and nothing of the in-memory bundle (``axes.bundle.AxisBundle``,
which writes and reads itself through it); shipping samples or masks in a folder is
``axes.bundle_attach``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from axes.samples import COMPACT_NAME
from tlgan_base.artifact import ArtifactError, atomic_artifact_dir, load_config, save_config

__all__ = [
    "ARRAYS_NAME",
    "DEFAULT_LATENT_SPACE",
    "FORMAT_VERSION",
    "KIND",
    "MASKS_NAME",
    "content_id",
    "jsonable",
    "read_folder",
    "read_masks",
    "split_stats",
    "utc_stamp",
    "write_folder",
]

KIND = "axis-bundle"
ARRAYS_NAME = "axes.npz"
#: the local-edit masks a bundle may ship (``attach_masks``; learned by ``tlgan.pipeline.locality``)
MASKS_NAME = "masks.npz"
FORMAT_VERSION = 1
#: the latent space of bundles that name none (every bundle written before spaces existed)
DEFAULT_LATENT_SPACE = "z"


def utc_stamp() -> str:
    """The time now as bundles record it (``2026-01-31T12:00:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_id(names: Sequence[str], references: Sequence[str],
               provenance: Mapping[str, Any], latent_space: str,
               arrays: Sequence[NDArray[Any]]) -> str:
    """A bundle's content id (12 hex, recorded in config.json and checked on loading): the
    sha256 of its names, references, provenance (without its ``created`` time), latent space
    (when not ``"z"``, so z bundles keep the ids they always had) and ``arrays`` (directions,
    raw directions, calibration) as little-endian float32."""
    h = hashlib.sha256()
    prov = {k: v for k, v in provenance.items() if k != "created"}
    head: dict[str, Any] = {"names": names, "references": references, "provenance": prov}
    if latent_space != DEFAULT_LATENT_SPACE:
        head["latent_space"] = latent_space
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    for arr in arrays:
        h.update(np.ascontiguousarray(arr, dtype="<f4").tobytes())
    return h.hexdigest()[:12]


def _json_check(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def jsonable(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """Round-trip ``obj`` through JSON (numpy scalars -> Python, tuples -> lists); ValueError
    naming ``name`` when it holds something else."""
    try:
        out: dict[str, Any] = json.loads(json.dumps(obj, default=_json_check))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold JSON values only: {exc}") from exc
    return out


def split_stats(stats: Sequence[Mapping[str, Any]]
                ) -> tuple[list[dict[str, Any]], dict[str, NDArray[Any]]]:
    """Per-axis stats split into their JSON values (config.json ``stats``) and their arrays
    (``stats.<i>.<key>`` in ``axes.npz``)."""
    arrays: dict[str, NDArray[Any]] = {}
    json_stats: list[dict[str, Any]] = []
    for i, s in enumerate(stats):
        plain: dict[str, Any] = {}
        for key, value in s.items():
            if isinstance(value, np.ndarray):
                arrays[f"stats.{i}.{key}"] = value
            else:
                plain[key] = value
        json_stats.append(plain)
    return json_stats, arrays


def write_folder(folder: Path, arrays: Mapping[str, NDArray[Any]], config: dict[str, Any],
                 shipped: Mapping[str, tuple[Path, dict[str, Any]]]) -> Path:
    """Write the bundle folder ``folder`` atomically (replacing it): ``arrays`` in
    ``axes.npz``, each shipped file copied from its path with its metadata under its key in
    ``config`` (``{"samples": (path, meta)}``), and ``config`` with every file's sha256."""
    with atomic_artifact_dir(folder) as tmp:
        with open(tmp / ARRAYS_NAME, "wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
        for key, (path, meta) in shipped.items():
            shutil.copyfile(path, tmp / path.name)
            config[key] = meta
        save_config(tmp, config)
    return folder


def _mismatch(folder: Path, what: str, have: Any, want: Any) -> ArtifactError:
    return ArtifactError(
        f"axis bundle {folder} was fitted for {what} {have!r}, but {want!r} is loaded; "
        "refit the axes for it or pick a matching bundle"
    )


def _check_expected(folder: Path, config: Mapping[str, Any], prov: Mapping[str, Any],
                    space: str, expect: Mapping[str, Any]) -> None:
    """Each expectation given must match the bundle (see :func:`read_folder`)."""
    size = expect["latent_size"]
    spaces = expect["spaces"]
    if spaces is not None:
        if space not in spaces:
            raise ArtifactError(
                f"axis bundle {folder} lives in latent space {space!r}, but the loaded "
                f"generator has no such space (it has: {', '.join(spaces)}); refit "
                "the axes for it or pick a matching bundle")
        size = spaces[space]
    checks = (("generator", prov.get("generator"), expect["generator"]),
              ("generator sha256", prov.get("generator_sha256"), expect["generator_sha256"]),
              ("latent size", config.get("latent_size"), size),
              ("extractor", prov.get("extractor"), expect["extractor"]),
              ("extractor sha256", prov.get("extractor_sha256"), expect["extractor_sha256"]))
    for what, have, want in checks:
        recorded = bool(have) or not what.endswith("sha256")  # a sha256 only if recorded
        if want is not None and recorded and have != want:
            raise _mismatch(folder, what, have, want)


def _shipped_meta(folder: Path, config: Mapping[str, Any], key: str,
                  file: str) -> dict[str, Any] | None:
    meta = config.get(key)
    if meta is not None and (not isinstance(meta, dict)
                             or file not in (config.get("files") or {})):
        raise ArtifactError(f"{folder}: config.json {key!r} names no checksummed {file}")
    return meta


def read_folder(folder: Path, *, generator: str | None = None,
                latent_size: int | None = None, extractor: str | None = None,
                generator_sha256: str | None = None, extractor_sha256: str | None = None,
                spaces: Mapping[str, int] | None = None) -> tuple[dict[str, Any], Any]:
    """Read and verify a bundle folder: the fields of its ``AxisBundle`` and the content id
    its config.json records (the caller compares it with the rebuilt bundle's).

    Checksums (``config["files"]``) are verified; each expectation that is given must match
    the bundle's provenance (sha256s are only compared when the bundle records one).
    ``spaces`` ({space name: latent size}, the generator's spaces) must hold the bundle's
    ``latent_space`` with its latent size; it replaces ``latent_size`` (the size of z) when
    given.

    Raises:
        ArtifactError: missing/corrupt folder or file, wrong kind, or a bundle for another
            generator / latent space / latent size / extractor (message names both sides).
    """
    config = load_config(folder, kind=KIND)
    prov = config.get("provenance")
    names = config.get("names")
    if not isinstance(prov, dict) or not isinstance(names, list):
        raise ArtifactError(f"{folder}: config.json lacks 'provenance' or 'names'")
    space = config.get("latent_space", DEFAULT_LATENT_SPACE)
    _check_expected(folder, config, prov, space, {
        "generator": generator, "generator_sha256": generator_sha256,
        "extractor": extractor, "extractor_sha256": extractor_sha256,
        "latent_size": latent_size, "spaces": spaces})
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
    fields = {"names": names, "directions": arrays["directions"],
              "raw_directions": arrays["raw_directions"],
              "references": config.get("references", []), "stats": stats,
              "provenance": prov, "latent_space": space,
              "samples_meta": _shipped_meta(folder, config, "samples", COMPACT_NAME),
              "source": folder.resolve(),
              "masks_meta": _shipped_meta(folder, config, "masks", MASKS_NAME)}
    return fields, config.get("id")


def read_masks(path: Path, names: Sequence[str]) -> dict[str, NDArray[np.float32]]:
    """The local-edit masks in ``path`` ({axis: (H, W) float32}), each checked to name one of
    ``names`` and to be a finite square array.

    Raises:
        ArtifactError: an unreadable file or a mask that fails those checks.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            masks = {k: np.asarray(npz[k], np.float32) for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{path} is not a readable npz file: {exc}") from exc
    for name, m in masks.items():
        if name not in names:
            raise ArtifactError(f"{path}: mask {name!r} names no axis of the bundle")
        if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.isfinite(m).all():
            raise ArtifactError(f"{path}: mask {name!r} must be a finite square array")
    return masks
