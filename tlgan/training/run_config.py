"""What the configs of the models trained on a CelebA-format directory's partitions share.

The photo encoder, the realism critic and the face upscaler each train on partition 0 and
stop early on partition 1, checkpoint into a work folder and resume only with the same
recipe; :class:`PartitionRunConfig` gives their dataclass configs the fields of such a run
(a subclass may give them other defaults), its common checks, the work folder and the
recipe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: config fields that do not shape the result (a resumed run may change them)
RUN_ONLY = ("out", "work", "device", "resume", "progress", "max_minutes")
#: the work folder's snapshot of the best weights so far, and its cache of decoded images
BEST = "best.safetensors"
IMAGES_CACHE = "images.npz"


def images_to_float(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images (N, H, W, 3) -> float (N, 3, H, W) in [0, 1] on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2) \
        .float().div_(255.0)


@dataclass(kw_only=True)
class PartitionRunConfig:
    """The fields every partition-trained run has (keyword-only; subclasses add their
    recipe's and may change these defaults)."""

    data: str
    out: str
    work: str | None = None
    device: str = "cpu"
    seed: int = 0
    eval_every: int = 250
    patience: int = 6
    val_images: int = 512
    max_train_images: int = 50000
    max_minutes: float | None = None
    checkpoint_every: int = 250
    resume: bool = False
    progress: bool = True

    def check_positive(self, names: Iterable[str]) -> None:
        """Raise ValueError naming the first of ``names`` that is not a positive integer."""
        for name in names:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be a positive integer, got {v!r}")

    def check_run(self) -> None:
        """Raise ValueError naming ``max_minutes`` when it is not positive (None: no limit)
        or ``data`` when it is not a directory."""
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes: must be positive, got {self.max_minutes!r}")
        if not Path(self.data).is_dir():
            raise ValueError(f"data: {self.data} is not a CelebA-format directory")

    @property
    def work_dir(self) -> Path:
        """The folder for checkpoints, the image cache and logs (``work``, else OUT.work)."""
        return Path(self.work) if self.work else Path(str(self.out) + ".work")

    def recipe(self) -> dict[str, Any]:
        """The fields that shape the result (a resumed run must match them)."""
        d: dict[str, Any] = asdict(self)
        for k in RUN_ONLY:
            d.pop(k)
        return d
