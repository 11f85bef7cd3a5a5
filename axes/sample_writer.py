"""Building a sample cache chunk by chunk, resumably (``SampleCacheWriter``).

Completed chunks live in a work folder ``<out>.partial-work`` so that an interrupted run
resumes where it stopped, and ``finalize()`` assembles the artifact atomically (the format:
``axes.samples``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from axes.samples import FORMAT_VERSION, cache_config, check_arrays, check_meta
from tlgan_base.artifact import (
    ArtifactError,
    atomic_artifact_dir,
    atomic_path,
    save_config,
    write_json_atomic,
)

__all__ = ["SampleCacheWriter", "work_dir_for"]

_CHUNK_RE = re.compile(r"^chunk-(\d{6})\.npz$")
_WORK_META = "work.json"


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
        self.meta = check_meta(meta)
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
        zz, pp, ee = check_arrays(z, probs, embeddings, n=stop - start,
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
            save_config(tmp, cache_config(self.meta, self.total_n, latent, emb))
        if not keep_work:
            shutil.rmtree(self.work, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        """Delete the work folder (all completed chunks)."""
        shutil.rmtree(self.work, ignore_errors=True)
        self._done.clear()
