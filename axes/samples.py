"""The sample cache: latents z with the extractor's probabilities and embeddings of their images.

On disk a sample cache is an artifact folder (see ``tlgan_base.artifact``)::

    <folder>/z.npy           (N, L) float32
    <folder>/probs.npy       (N, A) float32
    <folder>/embeddings.npy  (N, E) float16 or float32
    <folder>/config.json     kind "sample-cache", generator, extractor, n, seed, truncation,
                             attributes, latent_size, embedding_size, created, ... + sha256s;
                             latent_space ("w", ...) when the latents are not the generator's
                             input z (absent: "z")

It is built chunk by chunk with ``SampleCacheWriter``; completed chunks live in a work
folder ``<out>.partial-work`` so that an interrupted run resumes where it stopped, and
``finalize()`` assembles the artifact atomically. Arrays are always loaded with
``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
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
    write_json_atomic,
)

__all__ = [
    "COMPACT_NAME",
    "KIND",
    "REQUIRED_META",
    "SampleCache",
    "SampleCacheWriter",
    "load_compact",
    "load_samples",
    "save_samples",
    "work_dir_for",
    "write_compact",
]

KIND = "sample-cache"
FORMAT_VERSION = 1
#: keys ``meta`` must provide; ``truncation`` defaults to None, ``embedding_dtype`` to float16
REQUIRED_META: tuple[str, ...] = ("generator", "extractor", "seed", "attributes")
EMBEDDING_DTYPES = ("float16", "float32")
_CHUNK_RE = re.compile(r"^chunk-(\d{6})\.npz$")
_WORK_META = "work.json"


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


def _check_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
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


def _check_arrays(z: ArrayLike, probs: ArrayLike, embeddings: ArrayLike, *, n: int | None,
                  n_attributes: int, latent_size: int | None, embedding_size: int | None,
                  embedding_dtype: str) -> tuple[NDArray[np.float32], NDArray[np.float32],
                                                 NDArray[np.floating[Any]]]:
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


def work_dir_for(out: str | os.PathLike[str]) -> Path:
    """The work folder where ``SampleCacheWriter`` keeps completed chunks for ``out``."""
    out = Path(out)
    return out.parent / f"{out.name}.partial-work"


class SampleCacheWriter:
    """Resumable, chunked writer of a sample cache.

    Chunk ``i`` holds samples ``[i * chunk, min((i + 1) * chunk, total_n))``; the caller must
    produce the same samples for the same indices (e.g. latents seeded per sample), so that
    a resumed run is identical to an uninterrupted one. Usage::

        w = SampleCacheWriter(out, meta, total_n=50_000, chunk=1024)
        for i in w.pending_chunks():
            start, stop = w.chunk_range(i)
            z = ...; probs, emb = ...                 # render + label samples start..stop
            w.write_chunk(i, z, probs, emb)           # atomic: chunk file appears complete
        w.finalize()                                  # assembles <out> atomically

    Args:
        out: final artifact folder.
        meta: provenance stored in the config; must hold ``REQUIRED_META`` (generator,
            extractor, seed, attributes) and may hold truncation, embedding_dtype
            ("float16" default or "float32"), generator_sha256, extractor_sha256, ...
        total_n: number of samples N.
        chunk: samples per chunk.
        on_mismatch: what to do with an existing work folder written with other
            meta/total_n/chunk: ``"error"`` (ArtifactError naming the differing keys) or
            ``"restart"`` (discard it and start over).
    """

    def __init__(self, out: str | os.PathLike[str], meta: Mapping[str, Any], total_n: int,
                 chunk: int, *, on_mismatch: str = "error") -> None:
        if not isinstance(total_n, int | np.integer) or total_n < 1:
            raise ValueError(f"total_n must be a positive integer, got {total_n!r}")
        if not isinstance(chunk, int | np.integer) or chunk < 1:
            raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
        if on_mismatch not in ("error", "restart"):
            raise ValueError(f"on_mismatch must be 'error' or 'restart', got {on_mismatch!r}")
        self.out = Path(out)
        self.meta = _check_meta(meta)
        self.total_n = int(total_n)
        self.chunk = int(chunk)
        self.n_chunks = -(-self.total_n // self.chunk)
        self.work = work_dir_for(self.out)
        self._latent_size: int | None = self.meta.get("latent_size")
        self._embedding_size: int | None = self.meta.get("embedding_size")
        self._done: set[int] = set()
        self._open_work(on_mismatch)

    # ---------------------------------------------------------------- work folder
    def _work_record(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "meta": self.meta, "total_n": self.total_n,
                "chunk": self.chunk}

    def _open_work(self, on_mismatch: str) -> None:
        record_path = self.work / _WORK_META
        if self.work.exists():
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                record = None
            expected = self._work_record()
            if record != expected:
                if on_mismatch == "error":
                    raise ArtifactError(self._mismatch_message(record, expected))
                shutil.rmtree(self.work)
        if not self.work.exists():
            self.work.mkdir(parents=True)
            write_json_atomic(record_path, self._work_record())
            return
        for p in sorted(self.work.iterdir()):
            m = _CHUNK_RE.match(p.name)
            if m is None:
                if p.name != _WORK_META:  # leftovers of an interrupted chunk write
                    with contextlib.suppress(OSError):
                        p.unlink()
                continue
            i = int(m.group(1))
            if i < self.n_chunks and self._chunk_ok(p, i):
                self._done.add(i)
            else:
                p.unlink()

    def _mismatch_message(self, record: Any, expected: dict[str, Any]) -> str:
        if not isinstance(record, dict):
            return (f"{self.work} exists but its {_WORK_META} is missing or unreadable; "
                    "delete it or pass on_mismatch='restart'")
        diffs = []
        for key in ("total_n", "chunk"):
            if record.get(key) != expected[key]:
                diffs.append(f"{key} {record.get(key)!r} != {expected[key]!r}")
        raw_meta = record.get("meta")
        old_meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        for key in sorted(set(old_meta) | set(self.meta)):
            if old_meta.get(key) != self.meta.get(key):
                diffs.append(f"meta[{key!r}] {old_meta.get(key)!r} != {self.meta.get(key)!r}")
        if record.get("format_version") != FORMAT_VERSION:
            diffs.append(f"format_version {record.get('format_version')!r} != "
                         f"{FORMAT_VERSION}")
        return (f"{self.work} holds chunks of a different sample run ({'; '.join(diffs)}); "
                "delete it or pass on_mismatch='restart'")

    def _chunk_path(self, i: int) -> Path:
        return self.work / f"chunk-{i:06d}.npz"

    def _chunk_ok(self, path: Path, i: int) -> bool:
        try:
            with np.load(path, allow_pickle=False) as npz:
                if set(npz.files) != {"z", "probs", "embeddings"}:
                    return False
                self._check_chunk(i, npz["z"], npz["probs"], npz["embeddings"])
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            return False
        return True

    # ---------------------------------------------------------------- public API
    def chunk_range(self, i: int) -> tuple[int, int]:
        """Sample index range ``[start, stop)`` of chunk ``i``."""
        if not 0 <= i < self.n_chunks:
            raise ValueError(f"i must be in [0, {self.n_chunks}), got {i}")
        return i * self.chunk, min((i + 1) * self.chunk, self.total_n)

    def pending_chunks(self) -> list[int]:
        """Chunk indices not yet written, in order."""
        return [i for i in range(self.n_chunks) if i not in self._done]

    def is_done(self, i: int) -> bool:
        return i in self._done

    @property
    def done(self) -> bool:
        """True when every chunk has been written."""
        return len(self._done) == self.n_chunks

    @property
    def n_done(self) -> int:
        """Number of samples in written chunks."""
        return sum(self.chunk_range(i)[1] - self.chunk_range(i)[0] for i in self._done)

    def _check_chunk(self, i: int, z: ArrayLike, probs: ArrayLike,
                     embeddings: ArrayLike) -> tuple[NDArray[np.float32], NDArray[np.float32],
                                                     NDArray[np.floating[Any]]]:
        start, stop = self.chunk_range(i)
        zz, pp, ee = _check_arrays(z, probs, embeddings, n=stop - start,
                                   n_attributes=len(self.meta["attributes"]),
                                   latent_size=self._latent_size,
                                   embedding_size=self._embedding_size,
                                   embedding_dtype=self.meta["embedding_dtype"])
        self._latent_size = int(zz.shape[1])
        self._embedding_size = int(ee.shape[1])
        return zz, pp, ee

    def write_chunk(self, i: int, z: ArrayLike, probs: ArrayLike,
                    embeddings: ArrayLike) -> None:
        """Write chunk ``i`` atomically (temp file then rename); rewriting a chunk replaces it.

        Raises:
            ValueError: bad index or shapes (``z`` ``(rows, L)``, ``probs`` ``(rows, A)``,
                ``embeddings`` ``(rows, E)``, all chunks with the same L and E).
        """
        zz, pp, ee = self._check_chunk(i, z, probs, embeddings)
        with atomic_path(self._chunk_path(i)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, z=zz, probs=pp, embeddings=ee)
        self._done.add(i)

    def finalize(self, *, keep_work: bool = False) -> Path:
        """Assemble the chunks into the artifact folder ``out`` atomically; return it.

        The work folder is removed afterwards unless ``keep_work``. On any error ``out`` is
        left as it was and the work folder is kept (so a retry does not re-render).

        Raises:
            ArtifactError: chunks are missing or a chunk file became unreadable.
        """
        missing = self.pending_chunks()
        if missing:
            raise ArtifactError(f"cannot finalize {self.out}: {len(missing)} of "
                                f"{self.n_chunks} chunks are missing (first: {missing[:5]})")
        emb_dtype = np.dtype(self.meta["embedding_dtype"])
        with atomic_artifact_dir(self.out) as tmp:
            arrays: dict[str, np.memmap[Any, Any]] = {}
            for i in range(self.n_chunks):
                start, stop = self.chunk_range(i)
                path = self._chunk_path(i)
                try:
                    with np.load(path, allow_pickle=False) as npz:
                        parts = {k: npz[k] for k in ("z", "probs", "embeddings")}
                except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
                    self._done.discard(i)
                    with contextlib.suppress(OSError):
                        path.unlink()
                    raise ArtifactError(f"chunk file {path} is unreadable ({exc}); it will "
                                        "be re-made on the next run") from exc
                if not arrays:
                    for key, dtype in (("z", np.float32), ("probs", np.float32),
                                       ("embeddings", emb_dtype)):
                        arrays[key] = np.lib.format.open_memmap(
                            tmp / f"{key}.npy", mode="w+", dtype=dtype,
                            shape=(self.total_n, parts[key].shape[1]))
                for key, arr in arrays.items():
                    if parts[key].shape != (stop - start, arr.shape[1]):
                        raise ArtifactError(f"chunk file {path}: {key} has shape "
                                            f"{parts[key].shape}, expected "
                                            f"{(stop - start, arr.shape[1])}")
                    arr[start:stop] = parts[key]
            for arr in arrays.values():
                arr.flush()
            latent = int(arrays["z"].shape[1])
            emb = int(arrays["embeddings"].shape[1])
            arrays.clear()  # close the memmaps before hashing
            save_config(tmp, _config(self.meta, self.total_n, latent, emb))
        if not keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        """Delete the work folder (all completed chunks)."""
        shutil.rmtree(self.work, ignore_errors=True)
        self._done.clear()


def _config(meta: Mapping[str, Any], n: int, latent_size: int,
            embedding_size: int) -> dict[str, Any]:
    cfg: dict[str, Any] = {"kind": KIND, "format_version": FORMAT_VERSION}
    cfg.update(meta)
    cfg.setdefault("created", _now())
    cfg.update({"n": n, "latent_size": latent_size, "embedding_size": embedding_size})
    return cfg


def save_samples(out: str | os.PathLike[str], z: ArrayLike, probs: ArrayLike,
                 embeddings: ArrayLike, meta: Mapping[str, Any]) -> Path:
    """Write a complete sample cache in one go (atomically); return its folder."""
    m = _check_meta(meta)
    zz, pp, ee = _check_arrays(z, probs, embeddings, n=None,
                               n_attributes=len(m["attributes"]),
                               latent_size=m.get("latent_size"),
                               embedding_size=m.get("embedding_size"),
                               embedding_dtype=m["embedding_dtype"])
    out = Path(out)
    with atomic_artifact_dir(out) as tmp:
        np.save(tmp / "z.npy", zz, allow_pickle=False)
        np.save(tmp / "probs.npy", pp, allow_pickle=False)
        np.save(tmp / "embeddings.npy", ee, allow_pickle=False)
        save_config(tmp, _config(m, int(zz.shape[0]), int(zz.shape[1]), int(ee.shape[1])))
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
    zz, pp, ee = _check_arrays(z, probs, embeddings, n=None,
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
