"""Training images: a CelebA-format directory, a plain image folder, or a pack file.

``--data`` may name:

- a CelebA-format directory (``list_eval_partition.txt`` with ``NAME.jpg P`` lines, images in
  ``img_align_celeba/`` or beside it): partition 0 is the training set, partition 2 the test
  set used by the quality metric;
- a plain folder of images (``.jpg .jpeg .png .webp .bmp``): all of them train, there is no
  test set;
- a pack file (``.npz``, written by :func:`save_pack` / ``tlgan generator pack``): the
  already-decoded images, compact enough to carry to a GPU machine.

Every image is decoded once, centre-cropped to a square and area-resized (box filter) to the
training resolution, giving a uint8 array (N, R, R, 3). ``source_sha256`` digests the source
files (partition file, names and bytes of the images used), so a pack made from a directory
records the same data checksum as training on the directory itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from tlgan_base.artifact import atomic_path, sha256_bytes, sha256_file
from tlgan_base.celeba_layout import (
    IMAGE_DIR,
    PARTITION_FILE,
    TEST,
    TRAIN,
    VAL,
    images_dir,
    parse_partition,
    read_pairs,
)
from tlgan_base.image_codec import decode_image as decode_square
from tlgan_base.progress import progress_bar

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
PACK_FORMAT = "tlgan-image-pack/1"
PACK_ENCODINGS = ("jpeg", "raw")


@dataclass(frozen=True)
class ImageListing:
    """The image files of a data directory, split into training and test images."""

    root: Path
    kind: str  # "celeba" or "folder"
    train: tuple[Path, ...]
    test: tuple[Path, ...]
    partition_sha256: str | None = None


@dataclass
class ImageSet:
    """Decoded training (and test) images, uint8 (N, R, R, 3), with their provenance."""

    train: np.ndarray
    test: np.ndarray | None
    resolution: int
    source: str
    kind: str  # "celeba", "folder" or "pack:<celeba|folder>"
    source_sha256: str
    pack: dict[str, Any] | None = None

    def pixels_sha256(self) -> str:
        """sha256 of the decoded pixels actually used (train, then test)."""
        h = hashlib.sha256()
        for arr in (self.train, self.test):
            if arr is not None:
                h.update(f"{arr.shape}".encode())
                h.update(np.ascontiguousarray(arr).data)
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """Provenance for config.json."""
        out: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "source_sha256": self.source_sha256,
            "pixels_sha256": self.pixels_sha256(),
            "n_train": len(self.train),
            "n_test": 0 if self.test is None else len(self.test),
            "resolution": self.resolution,
        }
        if self.pack is not None:
            out["pack"] = self.pack
        return out


def check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int) \
            or not 8 <= resolution <= 1024:
        raise ValueError(f"resolution: must be an integer in [8, 1024], got {resolution!r}")
    return resolution


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def list_images(data: str | os.PathLike[str]) -> ImageListing:
    """List the training and test images of a CelebA-format directory or plain folder.

    Raises:
        ValueError: the path does not exist, the partition file is malformed or names a
            missing image, or there are no training images.
    """
    root = Path(data)
    if not root.exists():
        raise ValueError(f"data: {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"data: {root} is neither a folder of images nor a .npz pack file")
    part = root / PARTITION_FILE
    if part.is_file():
        image_dir = images_dir(root)
        raw = part.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"data: {part} is not UTF-8 text") from None

        def bad(message: str) -> None:
            raise ValueError(f"data: {message}")

        pairs = read_pairs(part, text.splitlines(), "partition", parse_partition, bad)
        train = [image_dir / name for name, (p, _) in pairs.items() if p == TRAIN]
        test = [image_dir / name for name, (p, _) in pairs.items() if p == TEST]
        for path in (*train, *test):
            if not path.is_file():
                raise ValueError(f"data: image {path} listed in {part} does not exist")
        if not train:
            raise ValueError(f"data: {part} lists no training images (partition 0)")
        return ImageListing(root, "celeba", tuple(train), tuple(test),
                            sha256_bytes(raw))
    images = sorted(p for p in root.iterdir() if p.is_file() and _is_image(p))
    if not images and (root / IMAGE_DIR).is_dir():
        images = sorted(p for p in (root / IMAGE_DIR).iterdir() if p.is_file() and _is_image(p))
    if not images:
        raise ValueError(
            f"data: no images ({', '.join(sorted(IMAGE_EXTS))}) and no {PARTITION_FILE} in {root}"
        )
    return ImageListing(root, "folder", tuple(images), ())


def decode_image(data: bytes, resolution: int, what: str = "image") -> np.ndarray:
    """Image bytes -> uint8 (R, R, 3): RGB, centre-cropped square, area-resized."""
    try:
        return decode_square(data, resolution, resample="box")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"data: cannot decode {what}: {exc}") from None


def _read_and_decode(path: Path, resolution: int) -> tuple[str, np.ndarray]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"data: cannot read {path}: {exc.strerror or exc}") from None
    return sha256_bytes(raw), decode_image(raw, resolution, str(path))


def decode_files(paths: Sequence[Path], resolution: int, *, workers: int | None = None,
                 progress: bool = False, desc: str = "decoding") -> tuple[np.ndarray, list[str]]:
    """Decode files in parallel threads; returns (uint8 (N, R, R, 3), sha256 of each file)."""
    out = np.empty((len(paths), resolution, resolution, 3), dtype=np.uint8)
    shas: list[str] = [""] * len(paths)
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool, progress_bar(total=len(paths), desc=desc, unit="img",
                                                           enabled=progress) as bar:
        for i, (sha, arr) in enumerate(pool.map(lambda p: _read_and_decode(p, resolution),
                                                paths, chunksize=64)):
            out[i] = arr
            shas[i] = sha
            bar.update(1)
    return out, shas


def _source_digest(listing: ImageListing, train_shas: Sequence[str],
                   test_shas: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(f"kind:{listing.kind}\npartition:{listing.partition_sha256}\n".encode())
    for split, paths, shas in (("train", listing.train, train_shas),
                               ("test", listing.test, test_shas)):
        for path, sha in zip(paths, shas, strict=True):
            h.update(f"{split}:{path.name}:{sha}\n".encode())
    return h.hexdigest()


def load_image_set(data: str | os.PathLike[str], resolution: int = 64, *,
                   cache: str | os.PathLike[str] | None = None,
                   progress: bool = False) -> ImageSet:
    """Decode the images named by ``data`` (directory or pack) at ``resolution``.

    With ``cache`` (a ``.npz`` path), a directory's decoded images are written there (raw,
    lossless) and reused by later calls whose source checksum and resolution match.

    Raises:
        ValueError: bad path, malformed data, undecodable image, or a pack whose resolution
            differs from ``resolution``.
    """
    check_resolution(resolution)
    path = Path(data)
    if path.is_file():
        return read_pack(path, resolution)
    listing = list_images(path)
    if cache is not None and Path(cache).is_file():
        cached = read_pack(Path(cache), resolution)
        digest = _source_digest(listing, [sha256_file(p) for p in listing.train],
                               [sha256_file(p) for p in listing.test])
        if (cached.source_sha256 == digest
                and cached.pack is not None and cached.pack.get("encoding") == "raw"):
            cached.source = str(path)
            cached.kind = listing.kind
            cached.pack = None
            return cached
    train, shas_train = decode_files(listing.train, resolution, progress=progress,
                                     desc="decoding train")
    test: np.ndarray | None = None
    shas_test: list[str] = []
    if listing.test:
        test, shas_test = decode_files(listing.test, resolution, progress=progress,
                                       desc="decoding test")
    images = ImageSet(train=train, test=test, resolution=resolution, source=str(path),
                      kind=listing.kind,
                      source_sha256=_source_digest(listing, shas_train, shas_test))
    if cache is not None:
        save_pack(images, cache, encoding="raw")
    return images


def _encode_jpeg(images: np.ndarray, quality: int) -> tuple[np.ndarray, np.ndarray]:
    chunks: list[bytes] = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img, "RGB").save(buf, format="JPEG", quality=quality, subsampling=0)
        chunks.append(buf.getvalue())
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(c) for c in chunks])
    return np.frombuffer(b"".join(chunks), dtype=np.uint8), offsets


def _decode_jpeg(blob: np.ndarray, offsets: np.ndarray, resolution: int,
                 what: str) -> np.ndarray:
    n = len(offsets) - 1
    out = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
    raw = blob.tobytes()

    def one(i: int) -> None:
        img = decode_image(raw[offsets[i]:offsets[i + 1]], resolution, f"{what} image {i}")
        out[i] = img

    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(n), chunksize=256))
    return out


def save_pack(images: ImageSet, out: str | os.PathLike[str], *, encoding: str = "jpeg",
              quality: int = 95) -> int:
    """Write ``images`` to a ``.npz`` pack (atomically); returns its size in bytes.

    ``encoding="jpeg"`` stores each image as JPEG bytes (4:4:4, ``quality``) in one array:
    about 3x smaller than ``"raw"`` (lossless uint8, deflate-compressed).
    """
    if encoding not in PACK_ENCODINGS:
        raise ValueError(f"encoding: must be one of {', '.join(PACK_ENCODINGS)}, got {encoding!r}")
    if not 50 <= quality <= 100:
        raise ValueError(f"quality: must be in [50, 100], got {quality}")
    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"out: a pack file must end in .npz, got {out.name!r}")
    meta = {
        "format": PACK_FORMAT,
        "encoding": encoding,
        "quality": quality if encoding == "jpeg" else None,
        "resolution": images.resolution,
        "source": images.source,
        "source_kind": images.kind.removeprefix("pack:"),
        "source_sha256": images.source_sha256,
        "source_pixels_sha256": images.pixels_sha256(),
    }
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
    for split, arr in (("train", images.train), ("test", images.test)):
        if arr is None:
            continue
        if encoding == "raw":
            arrays[split] = np.ascontiguousarray(arr)
        else:
            arrays[f"{split}_jpeg"], arrays[f"{split}_offsets"] = _encode_jpeg(arr, quality)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        if encoding == "raw":
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
        else:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    return out.stat().st_size


def read_pack(path: str | os.PathLike[str], resolution: int | None = None) -> ImageSet:
    """Read a pack written by :func:`save_pack` (no pickle).

    Raises:
        ValueError: not a pack, or its resolution differs from ``resolution``.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
            if "meta" not in files:
                raise ValueError(f"data: {path} is not a tlgan image pack (no 'meta' entry)")
            meta = json.loads(str(npz["meta"]))
            if not isinstance(meta, dict) or meta.get("format") != PACK_FORMAT:
                raise ValueError(f"data: {path} is not a {PACK_FORMAT} file")
            res = int(meta["resolution"])
            if resolution is not None and res != resolution:
                raise ValueError(
                    f"data: pack {path} holds {res}x{res} images, expected "
                    f"{resolution}x{resolution} (re-pack with --resolution {resolution})"
                )
            splits: dict[str, np.ndarray | None] = {}
            for split in ("train", "test"):
                if split in files:
                    splits[split] = npz[split]
                elif f"{split}_jpeg" in files:
                    splits[split] = _decode_jpeg(npz[f"{split}_jpeg"], npz[f"{split}_offsets"],
                                                 res, f"pack {path} {split}")
                else:
                    splits[split] = None
    except (OSError, EOFError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"data: cannot read pack {path}: {exc}") from None
    train = splits["train"]
    if train is None or train.ndim != 4 or train.shape[1:] != (res, res, 3) or len(train) == 0:
        raise ValueError(f"data: pack {path} holds no training images")
    if train.dtype != np.uint8:
        raise ValueError(f"data: pack {path} images must be uint8, got {train.dtype}")
    return ImageSet(
        train=train, test=splits["test"], resolution=res, source=str(path),
        kind=f"pack:{meta.get('source_kind', 'unknown')}",
        source_sha256=str(meta.get("source_sha256", "")),
        pack={"path": str(path), "encoding": meta.get("encoding"), "quality": meta.get("quality"),
              "from": meta.get("source"), "size_bytes": path.stat().st_size},
    )


def partition_names(data: str | os.PathLike[str], what: str = "data"
                    ) -> tuple[dict[int, list[str]], bytes]:
    """The image names of each partition of a CelebA-format directory, in file order, and
    the partition file's bytes.

    Raises:
        ValueError: no partition file, or a malformed one.
    """
    root = Path(data)
    part = root / PARTITION_FILE
    if not part.is_file():
        raise ValueError(f"data: {root} has no {PARTITION_FILE} (a CelebA-format directory "
                         f"is needed: {what})")
    raw = part.read_bytes()

    def bad(message: str) -> None:
        raise ValueError(f"data: {message}")

    pairs = read_pairs(part, raw.decode("utf-8", "replace").splitlines(), "partition",
                       parse_partition, bad)
    names: dict[int, list[str]] = {}
    for name, (p, _) in pairs.items():
        names.setdefault(p, []).append(name)
    return names, raw


@dataclass
class Partitions:
    """Decoded crops of partitions 0 (train) and 1 (validation), uint8 (N, R, R, 3)."""

    train: np.ndarray
    val: np.ndarray
    source: str
    source_sha256: str
    names: dict[str, list[str]] = field(default_factory=dict)


def load_partitions(data: str | Path, resolution: int, *, max_train: int, n_val: int,
                    seed: int, cache: Path | None = None, progress: bool = False
                    ) -> Partitions:
    """Decode partition 0 (at most ``max_train`` crops, a seeded choice when there are
    more) and the first ``n_val`` crops of partition 1 of a CelebA-format directory.

    Raises:
        ValueError: no partition file, a malformed one, or too few images in a partition.
    """
    root = Path(data)
    names, raw = partition_names(root, "training uses partition 0, stops early on 1")
    train = names.get(TRAIN, [])
    val = names.get(VAL, [])[:n_val]
    if not train or not val:
        raise ValueError(f"data: {root / PARTITION_FILE} needs images in partitions 0 and 1 "
                         f"(found {len(train)} and {len(val)})")
    if len(train) > max_train:
        keep = np.sort(np.random.default_rng(seed).choice(len(train), max_train, replace=False))
        train = [train[i] for i in keep]
    digest = sha256_bytes(("\n".join([sha256_bytes(raw), *train, "--", *val])
                           + f"\n{resolution}").encode())
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["digest"]) == digest:
                return Partitions(z["train"], z["val"], str(root), digest,
                                  {"train": train, "val": val})
    folder = images_dir(root)
    train_arr, _ = decode_files([folder / n for n in train], resolution, progress=progress,
                                desc="decoding partition 0")
    val_arr, _ = decode_files([folder / n for n in val], resolution, progress=progress,
                              desc="decoding partition 1")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".partial.npz")
        np.savez(tmp, train=train_arr, val=val_arr, digest=np.array(digest))
        tmp.replace(cache)
    return Partitions(train_arr, val_arr, str(root), digest, {"train": train, "val": val})
