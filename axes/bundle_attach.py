"""Shipping extra files in an axis bundle's folder: a compact subset of the sample cache the
axes were fitted on (``samples.npz``, so new axes can be fitted without the full cache) and
the local-edit masks (``masks.npz``). Each rewrites the folder atomically, keeps what the
folder already ships and leaves the bundle's content id unchanged.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from axes.bundle import AxisBundle, load, save
from axes.bundle_io import MASKS_NAME, jsonable, utc_stamp
from axes.samples import COMPACT_NAME, SampleCache, write_compact
from tlgan_base.artifact import sha256_file

__all__ = ["attach_masks", "attach_samples"]


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
        full = {**jsonable(dict(meta), "masks"), "file": MASKS_NAME,
                "sha256": sha256_file(path), "created": utc_stamp()}
        if bundle.has_samples and bundle.source is not None:
            shutil.copyfile(bundle.source / COMPACT_NAME, Path(tmpdir) / COMPACT_NAME)
        save(dataclasses.replace(bundle, masks_meta=full, source=Path(tmpdir)), folder)
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
            "created": utc_stamp(),
        }
        if not contiguous:
            meta["rows_list"] = [int(i) for i in idx]
        if bundle.has_masks and bundle.source is not None:  # the masks stay
            shutil.copyfile(bundle.source / MASKS_NAME, Path(tmpdir) / MASKS_NAME)
        carried = dataclasses.replace(bundle, samples_meta=meta, source=Path(tmpdir))
        save(carried, folder)
    return load(folder)
