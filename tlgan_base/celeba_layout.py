"""The CelebA folder layout and its list files, read the same way by every layer.

A CelebA-format directory holds::

    img_align_celeba/NNNNNN.jpg   face images (official: 178x218; any size works)
    list_attr_celeba.txt          line 1: image count; line 2: attribute names;
                                  then "<file> <v1> ... <vA>" with values 1 / -1
    list_eval_partition.txt       "<file> <p>" with p = 0 train, 1 val, 2 test (optional)
    identity_CelebA.txt           "<file> <identity id>" (optional)

The readers here only split lines into fields and report problems as ``"<file> line <n>:
<problem>"`` through a callback (which raises, or records and skips); each caller says which
error that is and what a list means to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = [
    "ATTR_FILE", "IDENTITY_FILE", "IMAGE_DIR", "PARTITIONS", "PARTITION_FILE", "TEST", "TRAIN",
    "VAL", "images_dir", "parse_partition", "read_pairs", "split_rows",
]

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"

TRAIN, VAL, TEST = 0, 1, 2
PARTITIONS = {"train": TRAIN, "val": VAL, "test": TEST}


def images_dir(root: Path) -> Path:
    """Where a data folder's images are: ``root/img_align_celeba/`` when it exists, else
    ``root`` itself."""
    return root / IMAGE_DIR if (root / IMAGE_DIR).is_dir() else root


def split_rows(lines: Iterable[str], start: int = 1) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of each non-blank line, numbered from ``start``."""
    for n, line in enumerate(lines, start=start):
        parts = line.split()
        if parts:
            yield n, parts


def parse_partition(text: str) -> int:
    """A partition code, 0, 1 or 2 (ValueError otherwise)."""
    value = int(text)
    if value not in (TRAIN, VAL, TEST):
        raise ValueError(text)
    return value


def read_pairs(path: Path, lines: Iterable[str], kind: str, parse: Callable[[str], int],
               bad: Callable[[str], None]) -> dict[str, tuple[int, int]]:
    """Parse ``"<file> <int>"`` lines (a partition or identity list) into
    ``{file: (value, line number)}``, in file order.

    A malformed line or a repeated file is passed to ``bad`` as ``"<path> line <n>:
    <problem>"`` and left out (``bad`` may raise instead).
    """
    out: dict[str, tuple[int, int]] = {}
    for n, parts in split_rows(lines):
        problem = None
        value = 0
        if len(parts) != 2:
            problem = f"expected '<image> <{kind}>', found {len(parts)} fields"
        else:
            try:
                value = parse(parts[1])
            except ValueError:
                problem = f"bad {kind} {parts[1]!r}"
        if problem is None and parts[0] in out:
            problem = f"duplicate image {parts[0]!r} (first on line {out[parts[0]][1]})"
        if problem is not None:
            bad(f"{path} line {n}: {problem}")
            continue
        out[parts[0]] = (value, n)
    return out
