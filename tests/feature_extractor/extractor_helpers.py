"""The tiny CelebA-format fixture maker and helpers shared by the extractor tests
(a plain module imported from tests/feature_extractor)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ATTRS = ["Smiling", "Male", "Eyeglasses", "Rare_Thing"]
N_IMAGES = 40
# the tiny training of the `trained` fixture (conftest.py) and of the AVX2 test
TINY_TRAIN = ("--epochs", "1", "--width", "4", "--batch-size", "8", "--device", "cpu",
              "--quiet", "--seed", "3")


def make_celeba(root: Path, n: int = N_IMAGES, *, partition: bool = True,
                size: tuple[int, int] = (36, 44)) -> Path:
    """A CelebA-format directory with ``n`` non-square JPEGs and 4 attributes.

    Partition: 24 train / 8 val / 8 test. "Male" images are brighter (learnable);
    "Rare_Thing" is negative for every test image (a single class there).
    """
    rng = np.random.default_rng(0)
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True)
    rows, parts, ids = [], [], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        male = i % 2
        base = 170 if male else 60
        arr = np.clip(rng.normal(base, 30, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(img_dir / name, quality=90)
        p = 0 if i < 24 else (1 if i < 32 else 2)
        vals = [1 if (i % 3 == 0) else -1, 1 if male else -1, 1 if i % 5 == 0 else -1,
                1 if (i % 7 == 0 and p != 2) else -1]
        rows.append(name + " " + " ".join(f"{v:2d}" for v in vals))
        parts.append(f"{name} {p}")
        ids.append(f"{name} {i // 4}")
    (root / "list_attr_celeba.txt").write_text(
        f"{n}\n" + " ".join(ATTRS) + " \n" + "\n".join(rows) + "\n", encoding="utf-8")
    if partition:
        (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n", encoding="utf-8")
    (root / "identity_CelebA.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    return root


def _one_line_error(res: object) -> str:
    out = getattr(res, "stderr", "") or getattr(res, "output", "")
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return lines[0]


def train_cli_subprocess(data: Path, out: Path, *options: str, env: dict[str, str] | None = None,
                         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``tlgan extractor train --data DATA --out OUT OPTIONS`` in a child process.

    Native training runs out of the test process, so a crash or a hang in torch's kernels
    (issue #23: oneDNN on AVX2 CPUs) fails the caller with the child's exit status and output
    instead of killing the test run. Raises ``subprocess.TimeoutExpired`` after ``timeout``.
    """
    code = "from tlgan.cli.extractor import extractor; extractor(prog_name='tlgan extractor')"
    return subprocess.run(
        [sys.executable, "-c", code, "train", "--data", str(data), "--out", str(out), *options],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL)
