"""Registry of upscaler weights (like the generator, extractor and encoder registries).

An upscaler is independent of the generator: it was trained on real crops (with inputs
degraded to look like generated faces), so any generator's faces may pass through it. With
no upscaler named, ``DEFAULT`` is loaded (None: faces are resized with Lanczos alone).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tlgan.upscale.sr_net import WEIGHTS_FILE
from tlgan.upscale.upscaler import Upscaler
from tlgan_base.artifact import ArtifactError
from tlgan_base.registry_entry import WeightsEntry, lookup

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class UpscalerWeights(WeightsEntry):
    """A registered upscaler: ``location`` is its weights folder relative to
    ``tlgan/upscale/weights/``; ``sha256`` that of its ``upscaler.safetensors``."""

    source: str
    description: str = ""

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.location

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "source": self.source,
                "description": self.description, "default": self.name == DEFAULT}


UPSCALERS: dict[str, UpscalerWeights] = {
    "celeba-face-sr2x": UpscalerWeights(
        name="celeba-face-sr2x",
        location="celeba-face-sr2x",
        sha256="dd7db3ab588f8764004d34173b5168f94cf74fdec85f5e2931fbb1f700a4b996",
        source=("`tlgan sr train --data celeba-subset --steps 5000 --max-minutes 38` at one "
                "torch thread on a shared 2-core machine (38 min, 4,174 steps, best step "
                "3,750): the subset's 128 px crops of partition 0, early stopping on "
                "partition 1; CelebA is non-commercial research only"),
        description=("2x face super-resolution (64 -> 128 px; residual over bicubic, 48 "
                     "channels x 6 blocks, 0.28 M parameters), inputs degraded like the "
                     "generator's faces"),
    ),
}

DEFAULT: str | None = "celeba-face-sr2x"


def load_upscaler(spec: str | os.PathLike[str] | None, device: str | torch.device = "cpu"
                  ) -> Upscaler | None:
    """Load an upscaler.

    Args:
        spec: None (the registry's ``DEFAULT``; None when there is none), a registered
            name, or a weights folder written by ``tlgan sr train``.
        device: where it runs.

    Raises:
        ArtifactError: the weights are missing or corrupt, or not the ones the registry
            pins.
        ValueError: ``spec`` names nothing we know.
    """
    if spec is None and DEFAULT is None:
        return None
    entry = lookup(UPSCALERS, None if spec is None else str(spec), DEFAULT)
    if entry is not None:
        folder, name = entry.path, entry.name
    else:
        folder, name = Path(str(spec)), str(spec)
        if not folder.is_dir():
            raise ValueError(f"upscaler: {str(spec)!r} is neither a registered upscaler "
                             f"({', '.join(UPSCALERS) or 'none registered'}) nor a weights "
                             "folder")
    upscaler = Upscaler.from_folder(folder, name=name, device=device)
    if entry is not None and upscaler.sha256 != entry.sha256:
        raise ArtifactError(
            f"upscaler {entry.name!r}: {folder / WEIGHTS_FILE} has sha256 "
            f"{upscaler.sha256[:12]}..., the registry pins {entry.sha256[:12]}...")
    return upscaler
