"""CelebA-format data: the index files, image decoding, the image cache and the transforms.

A CelebA directory in the official layout holds::

    img_align_celeba/NNNNNN.jpg   face images (official: 178x218; any size works)
    list_attr_celeba.txt          line 1: image count; line 2: attribute names;
                                  then "<file> <v1> ... <vA>" with values 1 / -1
    list_eval_partition.txt       "<file> <p>" with p = 0 train, 1 val, 2 test (optional)
    identity_CelebA.txt           "<file> <identity id>" (optional)

Attribute names are read from the attribute file, never from a hard-coded list. Problems
(malformed lines, rows whose image is missing, unreadable images) raise :class:`CelebaError`
naming the file and line; with ``skip_bad=True`` the bad rows are dropped instead and
reported (one line each) through the ``report`` callback.

Images are centre-cropped to a square (the official images are 178x218) and resized with an
antialiasing bilinear filter to the model's input size. Training augmentation works on whole
batches of tensors (:func:`augment_batch`).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tlgan_base.artifact import sha256_file
from tlgan_base.celeba import (
    ATTR_FILE,
    IDENTITY_FILE,
    IMAGE_DIR,
    PARTITION_FILE,
    PARTITIONS,
    parse_partition,
    read_pairs,
    split_rows,
)
from tlgan_base.images import load_image

if TYPE_CHECKING:  # pragma: no cover
    import torch

Report = Callable[[str], None]


class CelebaError(ValueError):
    """A CelebA-format directory is missing, malformed or refers to bad images.

    The message is one sentence naming the file (and line, where there is one).
    """


def _stderr_report(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class CelebaIndex:
    """The parsed index files of a CelebA-format directory.

    Attributes:
        root: the directory.
        attributes: attribute names, in file order.
        filenames: image file names (relative to ``root / img_align_celeba``).
        labels: (N, A) uint8 array of 0/1 labels (the file's -1 becomes 0).
        lines: (N,) line numbers (1-based) of each row in the attribute file.
        partitions: (N,) int8 partition per image (0 train, 1 val, 2 test), or None when the
            directory has no partition file.
        identities: (N,) int64 identity per image, or None without an identity file.
        checksum: provenance of the labels, see :func:`data_checksum`.
        skipped: one line per row dropped because of ``skip_bad``.
    """

    root: Path
    attributes: list[str]
    filenames: list[str]
    labels: np.ndarray
    lines: np.ndarray
    partitions: np.ndarray | None
    identities: np.ndarray | None
    checksum: dict[str, Any]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.filenames)

    @property
    def image_dir(self) -> Path:
        """The folder holding the images."""
        return self.root / IMAGE_DIR

    def indices(self, partition: str | int) -> np.ndarray:
        """Row indices of a partition: ``"train"``/``"val"``/``"test"``, 0/1/2 or ``"all"``.

        Raises:
            CelebaError: a named partition is asked for but there is no partition file.
        """
        if partition == "all":
            return np.arange(len(self), dtype=np.int64)
        code = PARTITIONS[partition] if isinstance(partition, str) else int(partition)
        if self.partitions is None:
            raise CelebaError(
                f"{self.root / PARTITION_FILE} does not exist, so there is no partition "
                f"{partition!r}; use partition 'all'"
            )
        return np.flatnonzero(self.partitions == code).astype(np.int64)

    def image_path(self, i: int) -> Path:
        """The image file of row ``i``."""
        return self.image_dir / self.filenames[i]

    def where(self, i: int) -> str:
        """``"<attribute file> line <n>"`` for row ``i`` (for error messages)."""
        return f"{self.root / ATTR_FILE} line {int(self.lines[i])}"


def data_checksum(root: str | os.PathLike[str], image_count: int) -> dict[str, Any]:
    """Provenance of a CelebA directory's labels.

    ``sha256`` digests the sha256 of the attribute file, of the partition file (if any) and
    the image count; the parts are recorded beside it.
    """
    root = Path(root)
    attr = sha256_file(root / ATTR_FILE)
    part_path = root / PARTITION_FILE
    part = sha256_file(part_path) if part_path.is_file() else None
    h = hashlib.sha256()
    h.update(f"{ATTR_FILE}:{attr}\n".encode())
    h.update(f"{PARTITION_FILE}:{part}\n".encode())
    h.update(f"images:{image_count}\n".encode())
    return {
        "sha256": h.hexdigest(),
        "attr_sha256": attr,
        "partition_sha256": part,
        "images": int(image_count),
    }


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CelebaError(f"{path} is not a UTF-8 text file ({exc.reason})") from exc
    except OSError as exc:
        raise CelebaError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_celeba(
    root: str | os.PathLike[str],
    *,
    skip_bad: bool = False,
    check_images: bool = True,
    report: Report | None = None,
) -> CelebaIndex:
    """Read and check the index files of a CelebA-format directory.

    Args:
        root: the directory (see the module docstring for its layout).
        skip_bad: drop malformed rows and rows whose image is missing, reporting each through
            ``report``, instead of raising.
        check_images: check that every row's image file exists.
        report: where skip reports go (default: one line each on stderr).

    Raises:
        CelebaError: the directory or its attribute file is missing, a line is malformed (the
            message names file and line), or an image is missing (unless ``skip_bad``).
    """
    report = report or _stderr_report
    root = Path(root)
    if not root.is_dir():
        raise CelebaError(f"CelebA directory {root} does not exist")
    attr_path = root / ATTR_FILE
    if not attr_path.is_file():
        raise CelebaError(f"{root} is not a CelebA-format directory: {ATTR_FILE} is missing")
    lines = _read_lines(attr_path)
    if len(lines) < 2:
        raise CelebaError(f"{attr_path} line {len(lines) + 1}: the file ends before the "
                          "attribute names line")
    try:
        declared = int(lines[0].strip())
    except ValueError:
        raise CelebaError(
            f"{attr_path} line 1: expected the image count, found {lines[0].strip()[:40]!r}"
        ) from None
    attributes = lines[1].split()
    if not attributes:
        raise CelebaError(f"{attr_path} line 2: no attribute names")
    if len(set(attributes)) != len(attributes):
        dup = sorted({a for a in attributes if attributes.count(a) > 1})
        raise CelebaError(f"{attr_path} line 2: duplicate attribute names {', '.join(dup)}")
    if any(_is_number(a) for a in attributes):
        raise CelebaError(f"{attr_path} line 2: expected attribute names, found numbers")
    n_attr = len(attributes)
    skipped: list[str] = []

    def bad(msg: str) -> None:
        if not skip_bad:
            raise CelebaError(msg)
        skipped.append(msg)
        report(f"skipped: {msg}")

    names: list[str] = []
    rows: list[np.ndarray] = []
    line_nos: list[int] = []
    seen: dict[str, int] = {}
    table = {"1": 1, "-1": 0, "+1": 1}
    for n, parts in split_rows(lines[2:], start=3):
        if len(parts) != n_attr + 1:
            bad(f"{attr_path} line {n}: expected an image name and {n_attr} values, "
                f"found {len(parts)} fields")
            continue
        try:
            values = [table[v] for v in parts[1:]]
        except KeyError as exc:
            bad(f"{attr_path} line {n}: attribute values must be 1 or -1, found {exc.args[0]!r}")
            continue
        if parts[0] in seen:
            bad(f"{attr_path} line {n}: duplicate image {parts[0]!r} (first on line "
                f"{seen[parts[0]]})")
            continue
        seen[parts[0]] = n
        names.append(parts[0])
        rows.append(np.asarray(values, dtype=np.uint8))
        line_nos.append(n)
    if not names:
        raise CelebaError(f"{attr_path} has no image rows")
    total_rows = len(names) + len(skipped)
    if declared != total_rows:
        bad(f"{attr_path} line 1: declares {declared} images but the file has {total_rows} "
            "rows")

    keep = np.ones(len(names), dtype=bool)
    partitions: np.ndarray | None = None
    part_path = root / PARTITION_FILE
    if part_path.is_file():
        pairs = read_pairs(part_path, _read_lines(part_path), "partition", parse_partition, bad)
        partitions = np.zeros(len(names), dtype=np.int8)
        for i, name in enumerate(names):
            if name not in pairs:
                if keep[i]:
                    bad(f"{attr_path} line {line_nos[i]}: image {name!r} has no row in "
                        f"{part_path}")
                keep[i] = False
                continue
            partitions[i] = pairs[name][0]
    identities: np.ndarray | None = None
    id_path = root / IDENTITY_FILE
    if id_path.is_file():
        id_pairs = read_pairs(id_path, _read_lines(id_path), "identity", int, bad)
        identities = np.full(len(names), -1, dtype=np.int64)
        for i, name in enumerate(names):
            if name in id_pairs:
                identities[i] = id_pairs[name][0]
    if check_images:
        image_dir = root / IMAGE_DIR
        if not image_dir.is_dir():
            raise CelebaError(f"{root} is not a CelebA-format directory: {IMAGE_DIR}/ is missing")
        present = set(os.listdir(image_dir))
        for i, name in enumerate(names):
            if keep[i] and name not in present:
                bad(f"{attr_path} line {line_nos[i]}: image {image_dir / name} does not exist")
                keep[i] = False
    sel = np.flatnonzero(keep)
    if sel.size == 0:
        raise CelebaError(f"{attr_path}: no usable rows remain after skipping bad ones")
    labels = np.stack([rows[i] for i in sel])
    return CelebaIndex(
        root=root,
        attributes=attributes,
        filenames=[names[i] for i in sel],
        labels=labels,
        lines=np.asarray(line_nos, dtype=np.int64)[sel],
        partitions=None if partitions is None else partitions[sel],
        identities=None if identities is None else identities[sel],
        checksum=data_checksum(root, int(sel.size)),
        skipped=skipped,
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Images


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
        from tlgan_base.progress import progress_bar

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


# --------------------------------------------------------------------------------------------
# Tensor transforms


@dataclass(frozen=True)
class Augment:
    """Training augmentation (batched, on tensors).

    Attributes:
        flip: probability of a horizontal flip.
        zoom: (min, max) zoom-in factor; 1.5 shows the central 1/1.5 of the image.
        zoom_p: probability that an image is zoomed (otherwise it keeps the full frame, the
            framing of plain inference).
        shift: largest random shift of the zoomed window, as a fraction of the margin left.
        brightness / contrast / saturation: jitter amplitude (factor drawn in 1 +- a).
    """

    flip: float = 0.5
    zoom: tuple[float, float] = (1.0, 1.5)
    zoom_p: float = 0.5
    shift: float = 0.5
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.15

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (recorded in the weights' config)."""
        return {"flip": self.flip, "zoom": list(self.zoom), "zoom_p": self.zoom_p,
                "shift": self.shift,
                "brightness": self.brightness, "contrast": self.contrast,
                "saturation": self.saturation}


def to_float_nchw(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) tensor -> float (N, 3, H, W) in [0, 1], channels_last memory."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def augment_batch(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """Augment a float (N, 3, H, W) batch in [0, 1]: zoom/shift, flip, colour jitter.

    Every random draw comes from ``generator`` (on the CPU) so a seed fixes the result.
    """
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(dev)

    lo, hi = aug.zoom
    zoom = lo + (hi - lo) * rand(n)
    zoom = torch.where(rand(n) < aug.zoom_p, zoom, torch.ones_like(zoom))
    scale = 1.0 / zoom  # window size relative to the image
    flip = rand(n) < aug.flip
    margin = (1.0 - scale) * aug.shift
    tx = (rand(n) * 2 - 1) * margin
    ty = (rand(n) * 2 - 1) * margin
    sx = torch.where(flip, -scale, scale)
    if hi > 1.0 or lo != 1.0:
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0] = sx
        theta[:, 0, 2] = tx
        theta[:, 1, 1] = scale
        theta[:, 1, 2] = ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    elif aug.flip > 0:
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if aug.brightness > 0:
        b = 1 + (rand(n) * 2 - 1) * aug.brightness
        x = x * b[:, None, None, None]
    if aug.contrast > 0:
        c = 1 + (rand(n) * 2 - 1) * aug.contrast
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * c[:, None, None, None] + mean
    if aug.saturation > 0:
        s = 1 + (rand(n) * 2 - 1) * aug.saturation
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
        x = (x - gray) * s[:, None, None, None] + gray
    return x.clamp_(0.0, 1.0).contiguous(memory_format=torch.channels_last)


def channel_stats(images: np.ndarray, max_images: int = 4096, seed: int = 0) -> tuple[
        list[float], list[float]]:
    """Per-channel mean and std (in [0, 1] units) of uint8 (N, H, W, 3) images."""
    rng = np.random.default_rng(seed)
    sel = images
    if len(images) > max_images:
        sel = images[np.sort(rng.choice(len(images), max_images, replace=False))]
    flat = sel.reshape(-1, 3).astype(np.float64) / 255.0
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    return [round(float(v), 6) for v in mean], [round(float(max(v, 1e-3)), 6) for v in std]


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop a float (N, C, H, W) batch to a square, then resize it to ``size``.

    Downscaling uses antialiased bilinear filtering (matching PIL's), upscaling bilinear.
    """
    import torch.nn.functional as F

    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        x = x[..., top:top + s, left:left + s]
        h = w = s
    if h == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=h > size)

