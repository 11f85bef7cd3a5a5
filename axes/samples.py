"""The sample cache: latents z with the extractor's probabilities and embeddings of their images.

On disk a sample cache is an artifact folder (see ``tlgan_base.artifact``)::

    <folder>/z.npy           (N, L) float32
    <folder>/probs.npy       (N, A) float32
    <folder>/embeddings.npy  (N, E) float16 or float32
    <folder>/config.json     kind "sample-cache", generator, extractor, n, seed, truncation,
                             attributes, latent_size, embedding_size, created, ... + sha256s;
                             latent_space ("w", ...) when the latents are not the generator's
                             input z (absent: "z")

This module holds the format: the loaded ``SampleCache``, the checks of its metadata and
arrays, writing a whole cache at once (``save_samples``), loading one, and the compact subset
an axis bundle ships. A large cache is built chunk by chunk, resumably, by
``axes.sample_writer.SampleCacheWriter``. Arrays are always loaded with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tlgan_base.artifact import (
    ArtifactError,
    atomic_artifact_dir,
    atomic_path,
    load_config,
    save_config,
)

__all__ = [
    "COMPACT_NAME",
    "KIND",
    "REQUIRED_META",
    "SampleCache",
    "load_compact",
    "load_samples",
    "save_samples",
    "write_compact",
]

KIND = "sample-cache"
FORMAT_VERSION = 1
#: keys ``meta`` must provide; ``truncation`` defaults to None, ``embedding_dtype`` to float16
REQUIRED_META: tuple[str, ...] = ("generator", "extractor", "seed", "attributes")
EMBEDDING_DTYPES = ("float16", "float32")


@dataclass(frozen=True, eq=False)
class SampleCache:
    """A loaded sample cache.

    Attributes:
        z: ``(N, L)`` float32 latents.
        probs: ``(N, A)`` float32 attribute probabilities.
        embeddings: ``(N, E)`` float16/float32 extractor embeddings.
        attributes: the ``A`` attribute names.
        config: the artifact config (kind, generator, extractor, n, seed, truncation, files...).
    """

    z: NDArray[np.float32]
    probs: NDArray[np.float32]
    embeddings: NDArray[np.floating[Any]]
    attributes: list[str]
    config: dict[str, Any]

    @property
    def n(self) -> int:
        return int(self.z.shape[0])

    @property
    def latent_size(self) -> int:
        return int(self.z.shape[1])

    @property
    def latent_space(self) -> str:
        """The generator latent space the latents live in (config ``latent_space``; "z"
        when absent)."""
        return str(self.config.get("latent_space") or "z")

    @property
    def id(self) -> str:
        """Short content id (12 hex) from the files' sha256s recorded in the config."""
        files = self.config.get("files") or {}
        blob = json.dumps(files, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def column(self, name: str) -> NDArray[np.float32]:
        """Probabilities ``(N,)`` of attribute ``name``; ValueError listing valid names."""
        if name not in self.attributes:
            raise ValueError(f"name {name!r} is not an attribute of this sample cache; valid: "
                             f"{', '.join(self.attributes)}")
        out: NDArray[np.float32] = self.probs[:, self.attributes.index(name)]
        return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """``meta`` checked (``REQUIRED_META``, attribute names, embedding dtype, no reserved
    keys) with its defaults filled, as JSON values; ValueError naming what is wrong."""
    if not isinstance(meta, Mapping):
        raise ValueError(f"meta must be a mapping, got {type(meta).__name__}")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"meta is missing {missing} (required: {list(REQUIRED_META)})")
    out = dict(meta)
    attrs = out["attributes"]
    if (not isinstance(attrs, list | tuple) or not attrs
            or not all(isinstance(a, str) for a in attrs)):
        raise ValueError("meta['attributes'] must be a non-empty list of attribute names")
    out["attributes"] = list(attrs)
    out.setdefault("truncation", None)
    out.setdefault("embedding_dtype", "float16")
    if out["embedding_dtype"] not in EMBEDDING_DTYPES:
        raise ValueError(f"meta['embedding_dtype'] must be one of {EMBEDDING_DTYPES}, got "
                         f"{out['embedding_dtype']!r}")
    reserved = {"kind", "files", "n", "format_version"} & set(out)
    if reserved:
        raise ValueError(f"meta must not set the reserved keys {sorted(reserved)}")
    try:
        normalized: dict[str, Any] = json.loads(json.dumps(out))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta must hold JSON values only: {exc}") from exc
    return normalized


def check_arrays(z: ArrayLike, probs: ArrayLike, embeddings: ArrayLike, *, n: int | None,
                 n_attributes: int, latent_size: int | None, embedding_size: int | None,
                 embedding_dtype: str) -> tuple[NDArray[np.float32], NDArray[np.float32],
                                                NDArray[np.floating[Any]]]:
    """z, probs and embeddings as the cache stores them, their shapes and values checked
    (``n`` rows, or any; the sizes given); ValueError naming the array."""
    zz = np.asarray(z, dtype=np.float32)
    pp = np.asarray(probs, dtype=np.float32)
    ee = np.asarray(embeddings, dtype=np.dtype(embedding_dtype))
    if zz.ndim != 2 or zz.shape[1] == 0:
        raise ValueError(f"z must be a 2-D array (N, L), got shape {zz.shape}")
    rows = zz.shape[0] if n is None else n
    if zz.shape[0] != rows:
        raise ValueError(f"z must have {rows} rows, got shape {zz.shape}")
    if latent_size is not None and zz.shape[1] != latent_size:
        raise ValueError(f"z must have {latent_size} columns (latent size), got {zz.shape}")
    if pp.shape != (rows, n_attributes):
        raise ValueError(f"probs must have shape ({rows}, {n_attributes}), got {pp.shape}")
    if ee.ndim != 2 or ee.shape[0] != rows:
        raise ValueError(f"embeddings must have shape ({rows}, E), got {ee.shape}")
    if embedding_size is not None and ee.shape[1] != embedding_size:
        raise ValueError(f"embeddings must have {embedding_size} columns, got {ee.shape}")
    if not np.all(np.isfinite(zz)):
        raise ValueError("z contains NaN or infinite values")
    if not np.all(np.isfinite(pp)) or pp.min(initial=0) < 0 or pp.max(initial=0) > 1:
        raise ValueError("probs must hold probabilities in [0, 1]")
    return zz, pp, ee



def cache_config(meta: Mapping[str, Any], n: int, latent_size: int,
                 embedding_size: int) -> dict[str, Any]:
    """The config.json of a cache of ``n`` samples with checked ``meta``."""
    cfg: dict[str, Any] = {"kind": KIND, "format_version": FORMAT_VERSION}
    cfg.update(meta)
    cfg.setdefault("created", _now())
    cfg.update({"n": n, "latent_size": latent_size, "embedding_size": embedding_size})
    return cfg


def save_samples(out: str | os.PathLike[str], z: ArrayLike, probs: ArrayLike,
                 embeddings: ArrayLike, meta: Mapping[str, Any]) -> Path:
    """Write a complete sample cache in one go (atomically); return its folder."""
    m = check_meta(meta)
    zz, pp, ee = check_arrays(z, probs, embeddings, n=None,
                              n_attributes=len(m["attributes"]),
                              latent_size=m.get("latent_size"),
                              embedding_size=m.get("embedding_size"),
                              embedding_dtype=m["embedding_dtype"])
    out = Path(out)
    with atomic_artifact_dir(out) as tmp:
        np.save(tmp / "z.npy", zz, allow_pickle=False)
        np.save(tmp / "probs.npy", pp, allow_pickle=False)
        np.save(tmp / "embeddings.npy", ee, allow_pickle=False)
        save_config(tmp, cache_config(m, int(zz.shape[0]), int(zz.shape[1]),
                                      int(ee.shape[1])))
    return out


def load_samples(folder: str | os.PathLike[str], *, verify: bool = True,
                 mmap: bool = False) -> SampleCache:
    """Load a sample cache, verifying checksums (``verify``) and shapes.

    ``mmap=True`` memory-maps the arrays read-only instead of reading them into memory.

    Raises:
        ArtifactError: missing/corrupt folder or file, wrong kind, or inconsistent shapes.
    """
    folder = Path(folder)
    config = load_config(folder, kind=KIND, verify=verify)
    arrays: dict[str, NDArray[Any]] = {}
    for key in ("z", "probs", "embeddings"):
        path = folder / f"{key}.npy"
        try:
            arrays[key] = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
        except (OSError, ValueError, EOFError) as exc:
            raise ArtifactError(f"{path} is not a readable .npy file: {exc}") from exc
    attrs = config.get("attributes")
    if not isinstance(attrs, list):
        raise ArtifactError(f"{folder}: config.json lacks the 'attributes' list")
    z, probs, emb = arrays["z"], arrays["probs"], arrays["embeddings"]
    n = config.get("n")
    if (z.ndim != 2 or z.shape[0] != n or probs.shape != (n, len(attrs))
            or emb.ndim != 2 or emb.shape[0] != n or z.dtype != np.float32
            or probs.dtype != np.float32
            or config.get("latent_size") not in (None, z.shape[1])):
        raise ArtifactError(
            f"{folder}: arrays z {z.shape}, probs {probs.shape}, embeddings {emb.shape} do "
            f"not match config n={n}, {len(attrs)} attributes"
        )
    return SampleCache(z=z, probs=probs, embeddings=emb, attributes=list(attrs),
                       config=config)


# ---------------------------------------------------------------- compact (shipped) samples
#: the file a bundle folder ships its compact sample subset in (see ``axes.bundle``)
COMPACT_NAME = "samples.npz"
COMPACT_DTYPE = "float16"


def write_compact(path: str | os.PathLike[str], z: ArrayLike, probs: ArrayLike,
                  embeddings: ArrayLike) -> Path:
    """Write z, probs and embeddings as float16 into one compressed ``.npz`` (atomically).

    This is the subset of a sample cache an axis bundle ships (``samples.npz``) so that new
    axes can be fitted without the full cache. Raises ValueError on bad shapes (naming the
    array)."""
    zz, pp, ee = check_arrays(z, probs, embeddings, n=None,
                              n_attributes=int(np.shape(probs)[1]) if np.ndim(probs) == 2
                              else -1, latent_size=None, embedding_size=None,
                              embedding_dtype="float32")
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, z=zz.astype(np.float16), probs=pp.astype(np.float16),
                            embeddings=ee.astype(np.float16))
    return path


def load_compact(path: str | os.PathLike[str], meta: Mapping[str, Any]) -> SampleCache:
    """Load a compact sample file written by :func:`write_compact` as a :class:`SampleCache`
    (z and probs as float32, embeddings float16); ``meta`` is its config (attributes,
    generator, extractor, latent_space, ...: the bundle's ``samples`` block).

    Raises:
        ArtifactError: unreadable file or arrays that do not match ``meta``.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            z = np.asarray(npz["z"], dtype=np.float32)
            probs = np.clip(np.asarray(npz["probs"], dtype=np.float32), 0.0, 1.0)
            emb = np.asarray(npz["embeddings"], dtype=np.float16)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise ArtifactError(f"{path} is not a readable compact sample file: {exc}") from exc
    attrs = meta.get("attributes")
    if not isinstance(attrs, list):
        raise ArtifactError(f"{path}: its metadata lacks the 'attributes' list")
    n = z.shape[0]
    if (z.ndim != 2 or probs.shape != (n, len(attrs)) or emb.ndim != 2 or emb.shape[0] != n
            or meta.get("n") not in (None, n)):
        raise ArtifactError(f"{path}: arrays z {z.shape}, probs {probs.shape}, embeddings "
                            f"{emb.shape} do not match n={meta.get('n')}, {len(attrs)} "
                            "attributes")
    for arr in (z, probs, emb):
        arr.setflags(write=False)
    config = {"kind": KIND, **dict(meta), "n": n, "latent_size": int(z.shape[1]),
              "embedding_size": int(emb.shape[1]),
              "files": {COMPACT_NAME: meta.get("sha256")}}
    return SampleCache(z=z, probs=probs, embeddings=emb, attributes=list(attrs),
                       config=config)
