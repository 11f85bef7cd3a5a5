"""Registry of photo-encoder weights (like the generator and extractor registries).

An encoder is tied to one generator: its ``config.json`` records the generator's sha256, and
loading it for any other generator is refused (as axis bundles are). With no encoder named,
the one registered for the generator in use is loaded; a generator with none registered has
no photo encoding (``tlgan encoder train`` makes one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tlgan import tied_weights
from tlgan.encoders.encoder_net import WEIGHTS_FILE
from tlgan.encoders.photo_encoder import PhotoEncoder
from tlgan.tied_weights import TiedWeights, check_pinned, resolve_tied

if TYPE_CHECKING:
    from tlgan.generators.base import FaceGenerator

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: a registered encoder: ``location`` is its weights folder relative to
#: ``tlgan/encoders/weights/``; ``sha256`` that of its ``encoder.safetensors``
EncoderWeights = TiedWeights

DEFAULT = "celeba-dcgan64-encoder"

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
        weights_dir=WEIGHTS_DIR, default=True,
    ),
}


def registered_for(generator: FaceGenerator) -> EncoderWeights | None:
    """The registered encoder trained for this generator (by sha256), if any."""
    return tied_weights.registered_for(ENCODERS, generator.sha256)


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
    found = resolve_tied("encoder", ENCODERS, spec, generator.sha256)
    if found is None:
        return None
    entry, folder, name = found
    encoder = PhotoEncoder.from_folder(folder, generator, name=name)
    check_pinned("encoder", entry, folder / WEIGHTS_FILE, encoder.sha256)
    return encoder
