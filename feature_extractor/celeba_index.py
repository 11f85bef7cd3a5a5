"""CelebA-format index files: attributes, partitions and identities, read and checked.

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
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tlgan_base.artifact import sha256_file
from tlgan_base.celeba_layout import (
    ATTR_FILE,
    IDENTITY_FILE,
    IMAGE_DIR,
    PARTITION_FILE,
    PARTITIONS,
    parse_partition,
    read_pairs,
    split_rows,
)

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
