"""Images of a CelebA-format directory: decoding in batches and the decoded-image cache.

Images are decoded by :func:`tlgan_base.image_codec.load_image`: centre-cropped to a square (the
official images are 178x218) and resized with an
antialiasing bilinear filter to the model's input size. Unreadable images raise
:class:`~feature_extractor.celeba_index.CelebaError` naming the image and its attribute-file line
(or, with ``skip_bad=True``, are dropped and reported).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from feature_extractor.celeba_index import CelebaError, CelebaIndex, Report, _stderr_report
from tlgan_base.image_codec import load_image
from tlgan_base.progress import progress_bar


def _decode_many(
    paths: Sequence[Path], size: int | None, workers: int
) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
    def one(i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            return i, load_image(paths[i], size), None
        except Exception as exc:  # PIL raises many kinds for a bad file
            return i, None, f"{type(exc).__name__}: {exc}"

    if workers <= 1:
        for i in range(len(paths)):
            yield one(i)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(one, range(len(paths)), chunksize=64)


def load_images(
    index: CelebaIndex,
    rows: np.ndarray,
    size: int,
    *,
    workers: int = 2,
    skip_bad: bool = False,
    report: Report | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode the images of ``rows`` into one uint8 (n, size, size, 3) array.

    Returns ``(images, ok_rows)``; ``ok_rows`` equals ``rows`` unless ``skip_bad`` dropped
    unreadable images (each reported through ``report``).

    Raises:
        CelebaError: an image cannot be read (names the image and its attribute-file line).
    """
    report = report or _stderr_report
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), size, size, 3), dtype=np.uint8)
    ok = np.ones(len(rows), dtype=bool)
    paths = [index.image_path(int(r)) for r in rows]
    it = _decode_many(paths, size, workers)
    if progress:
        it = progress_bar(it, total=len(rows), desc=f"decode {size}px", unit="img",
                          leave=False)
    for i, arr, err in it:
        if arr is None:
            msg = (f"{index.where(int(rows[i]))}: image {paths[i]} cannot be read ({err})")
            if not skip_bad:
                raise CelebaError(msg)
            index.skipped.append(msg)
            report(f"skipped: {msg}")
            ok[i] = False
            continue
        out[i] = arr
    if not ok.all():
        out = out[ok]
    return out, rows[ok]


def iter_image_batches(
    index: CelebaIndex,
    rows: np.ndarray,
    batch_size: int,
    size: int,
    *,
    workers: int = 2,
    skip_bad: bool = False,
    report: Report | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(images uint8 (b, size, size, 3), rows)`` batches, decoding lazily."""
    rows = np.asarray(rows, dtype=np.int64)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        imgs, ok_rows = load_images(index, chunk, size, workers=workers, skip_bad=skip_bad,
                                    report=report)
        if len(ok_rows):
            yield imgs, ok_rows


def image_cache(
    index: CelebaIndex,
    size: int,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    workers: int = 2,
    skip_bad: bool = False,
    report: Report | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """All images of ``index`` decoded once at ``size`` px: ``(uint8 (n,S,S,3), rows)``.

    With ``cache_dir`` the array is also kept as ``.npy`` files there (keyed by the data
    checksum and the size) and read back on the next call.
    """
    rows = np.arange(len(index), dtype=np.int64)
    paths = None
    if cache_dir is not None:
        key = f"celeba-{index.checksum['sha256'][:16]}-{size}px"
        paths = (Path(cache_dir) / f"{key}.images.npy", Path(cache_dir) / f"{key}.rows.npy")
        if paths[0].is_file() and paths[1].is_file():
            try:
                imgs = np.load(paths[0], allow_pickle=False)
                cached_rows = np.load(paths[1], allow_pickle=False)
                if imgs.shape[1:] == (size, size, 3) and len(imgs) == len(cached_rows):
                    return imgs, cached_rows
            except (OSError, ValueError):
                pass  # a corrupt cache is rebuilt below
    imgs, ok_rows = load_images(index, rows, size, workers=workers, skip_bad=skip_bad,
                                report=report, progress=progress)
    if paths is not None:
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        for path, arr in zip(paths, (imgs, ok_rows), strict=True):
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npy")
            np.save(tmp, arr, allow_pickle=False)
            os.replace(tmp, path)
    return imgs, ok_rows
