"""Registry of photo-encoder weights (like the generator and extractor registries).

An encoder is tied to one generator: its ``config.json`` records the generator's sha256, and
loading it for any other generator is refused (as axis bundles are). With no encoder named,
the one registered for the generator in use is loaded; a generator with none registered has
no photo encoding (``tlgan encoder train`` makes one).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlgan.encoders.photo_encoder import PhotoEncoder
from tlgan_base.artifact import ArtifactError
from tlgan_base.registry_entry import WeightsEntry, lookup

if TYPE_CHECKING:
    from tlgan.generators.base import FaceGenerator

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class EncoderWeights(WeightsEntry):
    """A registered encoder: ``location`` is its weights folder relative to
    ``tlgan/encoders/weights/``; ``sha256`` that of its ``encoder.safetensors``."""

    generator: str
    generator_sha256: str
    source: str
    description: str = ""

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.location

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "generator": self.generator,
                "generator_sha256": self.generator_sha256, "source": self.source,
                "description": self.description, "default": self.name == DEFAULT}


ENCODERS: dict[str, EncoderWeights] = {
    "celeba-dcgan64-encoder": EncoderWeights(
        name="celeba-dcgan64-encoder",
        location="celeba-dcgan64-encoder",
        sha256="bd69c939d94cce3b8c07d51aab9878d7937d09a84f52c638ec806fc16f02846a",
        generator="celeba-dcgan64",
        generator_sha256="e9ebbb42e04fcec37fe0b0faa094d6f1f61b10ef6e5ddfae4b4b792b8ff36902",
        source=("`tlgan encoder train --data celeba-subset --steps 3200` on 2 CPU cores (57 "
                "min): generated pairs + the subset's partition 0, early stopping on "
                "partition 1; CelebA is non-commercial research only"),
        description="64 px photo -> z of celeba-dcgan64 (residual CNN, 1.6 M parameters)",
    ),
}

DEFAULT = "celeba-dcgan64-encoder"


def registered_for(generator: FaceGenerator) -> EncoderWeights | None:
    """The registered encoder trained for this generator (by sha256), if any."""
    for entry in ENCODERS.values():
        if entry.generator_sha256 == generator.sha256:
            return entry
    return None


def load_encoder(spec: str | os.PathLike[str] | None, generator: FaceGenerator
                 ) -> PhotoEncoder | None:
    """Load a photo encoder for ``generator``.

    Args:
        spec: None (the encoder registered for this generator; None when there is none), a
            registered name, or a weights folder written by ``tlgan encoder train``.
        generator: the generator it must have been trained for (the encoder runs on its
            device).

    Raises:
        ArtifactError: the weights are missing or corrupt, or were trained for another
            generator.
        ValueError: ``spec`` names nothing we know.
    """
    if spec is None:
        entry = registered_for(generator)
        if entry is None:
            return None
    else:
        entry = lookup(ENCODERS, str(spec))
    if entry is not None:
        folder, name = entry.path, entry.name
    else:
        folder, name = Path(spec), str(spec)  # type: ignore[arg-type]
        if not folder.is_dir():
            raise ValueError(f"encoder: {str(spec)!r} is neither a registered encoder "
                             f"({', '.join(ENCODERS) or 'none registered'}) nor a weights "
                             "folder")
    encoder = PhotoEncoder.from_folder(folder, generator, name=name)
    if entry is not None and encoder.sha256 != entry.sha256:
        raise ArtifactError(
            f"encoder {entry.name!r}: {folder / 'encoder.safetensors'} has sha256 "
            f"{encoder.sha256[:12]}..., the registry pins {entry.sha256[:12]}...")
    return encoder
