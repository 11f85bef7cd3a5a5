"""Settings and data shared by the training tests (a plain module imported from tests/tlgan)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TINY = {"batch": 4, "ngf": 8, "ndf": 8, "fd_samples": 8, "bn_batches": 2, "progress": False,
        "sample_every": 2, "checkpoint_every": 2, "eval_every": 2}
TINY_CLI = ["--batch", "4", "--ngf", "8", "--ndf", "8", "--fd-samples", "8", "--quiet",
            "--sample-every", "2", "--checkpoint-every", "2", "--eval-every", "2"]


def make_celeba(root: Path, n: int = 24) -> Path:
    """A CelebA-format folder of ``n`` non-square JPEGs: 16 in partition 0, 4 in 1, 4 in 2."""
    rng = np.random.default_rng(0)
    (root / "img_align_celeba").mkdir(parents=True)
    parts = []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        arr = np.clip(rng.normal(120, 40, size=(88, 72, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / "img_align_celeba" / name, quality=90)
        parts.append(f"{name} {0 if i < 16 else (1 if i < 20 else 2)}")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n", encoding="utf-8")
    return root
