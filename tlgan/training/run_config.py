"""What the configs of the models trained on a CelebA-format directory's partitions share.

The photo encoder, the realism critic and the face upscaler each train on partition 0 and
stop early on partition 1, checkpoint into a work folder and resume only with the same
recipe; :class:`PartitionRunConfig` gives their dataclass configs those common checks, the
work folder and the recipe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

#: config fields that do not shape the result (a resumed run may change them)
RUN_ONLY = ("out", "work", "device", "resume", "progress", "max_minutes")


class PartitionRunConfig:
    """Mixin of a dataclass config with ``data``, ``out``, ``work`` and ``max_minutes``
    fields (and the integer fields its :meth:`check_run` names)."""

    data: str
    out: str
    work: str | None
    max_minutes: float | None

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
        d: dict[str, Any] = asdict(self)  # type: ignore[call-overload]
        for k in RUN_ONLY:
            d.pop(k)
        return d
