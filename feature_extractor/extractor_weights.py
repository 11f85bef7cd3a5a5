"""Known extractor weights and :func:`load_extractor`.

An extractor weights folder (written by ``tlgan extractor train``) holds ``model.safetensors``
and ``config.json`` (kind ``extractor-weights``). Registered weights ship inside the package
under ``feature_extractor/weights/<name>/``; their entry pins the sha256 of
``model.safetensors`` so a corrupt or swapped file is refused. Any other weights folder can be
loaded by passing its path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError
from safetensors.torch import load_file

from feature_extractor.model import AttributeNet, Extractor, ModelConfig, Normalization
from tlgan_base.artifact import ArtifactError, load_config, sha256_file
from tlgan_base.registry_entry import WeightsEntry, lookup

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from feature_extractor.model import Extractor

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = "model.safetensors"
KIND = "extractor-weights"

CELEBA_NOTE = "trained on CelebA subset; CelebA is non-commercial research only"


@dataclass(frozen=True)
class ExtractorEntry(WeightsEntry):
    """A registered extractor: where its weights are and what they must be.

    ``location`` is the weights folder relative to ``feature_extractor/weights/``; ``sha256``
    is that of its ``model.safetensors``.
    """

    input_size: int
    num_attributes: int
    normalization: dict[str, tuple[float, ...]]
    source: str

    @property
    def folder(self) -> str:
        """The weights folder, relative to ``feature_extractor/weights/``."""
        return self.location

    @property
    def path(self) -> Path:
        """Absolute path of the weights folder."""
        return WEIGHTS_DIR / self.folder


EXTRACTORS: dict[str, ExtractorEntry] = {
    "celeba-cnn64": ExtractorEntry(
        name="celeba-cnn64",
        location="celeba-cnn64",
        sha256="d56ca70e17e9a3a51b97215a4b36aa24c41c66fbac125cebf840c5e7cff5d247",
        input_size=64,
        num_attributes=40,
        normalization={"mean": (0.498243, 0.403132, 0.353524),
                       "std": (0.299234, 0.269308, 0.263334)},
        source=CELEBA_NOTE + "; `tlgan extractor train --data celeba-subset --out ...`",
    ),
}

DEFAULT = "celeba-cnn64"


def _build(folder: Path, config: dict[str, Any], name: str, sha: str,
           device: str | torch.device | None) -> Extractor:
    try:
        mcfg = ModelConfig.from_dict(config["model"])
        attributes = [str(a) for a in config["attributes"]]
        norm = Normalization(mean=[float(v) for v in config["normalization"]["mean"]],
                             std=[float(v) for v in config["normalization"]["std"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(
            f"{folder / 'config.json'} is not a valid extractor config ({type(exc).__name__}: "
            f"{exc})"
        ) from None
    if len(attributes) != mcfg.num_attributes:
        raise ArtifactError(f"{folder / 'config.json'} lists {len(attributes)} attributes for a "
                            f"model with {mcfg.num_attributes} outputs")
    try:
        state = load_file(str(folder / WEIGHTS_FILE), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{folder / WEIGHTS_FILE} is not a readable safetensors file "
                            f"({exc})") from None
    model = AttributeNet(mcfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ArtifactError(f"{folder / WEIGHTS_FILE} does not match the architecture in its "
                            f"config.json ({first})") from None
    inference = config.get("inference") or {}
    try:
        flip_tta = bool(inference.get("flip_tta", False))
        zooms = tuple(float(z) for z in inference.get("zooms", [1.0]))
        return Extractor(model, attributes, norm, name=name, sha256=sha, device=device,
                         config=config, flip_tta=flip_tta, tta_zooms=zooms)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{folder / 'config.json'} has an invalid 'inference' entry "
                            f"({exc})") from None


def load_extractor_dir(folder: str | os.PathLike[str], device: str | torch.device | None = "cpu",
                       *, name: str | None = None) -> Extractor:
    """Load any extractor weights folder (checksums verified against its config.json).

    Raises:
        ArtifactError: the folder is missing, not an extractor weights folder, or corrupt.
    """
    folder = Path(folder)
    config = load_config(folder, kind=KIND, verify=True)
    if WEIGHTS_FILE not in config.get("files", {}):
        raise ArtifactError(f"{folder / 'config.json'} does not list {WEIGHTS_FILE}")
    sha = str(config["files"][WEIGHTS_FILE])
    return _build(folder, config, name or str(folder), sha, device)


def load_extractor(name_or_dir: str | os.PathLike[str] | None = None,
                   device: str | torch.device | None = "cpu") -> Extractor:
    """Load a registered extractor by name (None = :data:`DEFAULT`) or a weights folder path.

    A registered extractor's ``model.safetensors`` must have the sha256 pinned in its entry.

    Raises:
        ArtifactError: the weights are missing, corrupt or do not match the registry (one
            sentence saying what was expected and where).
        ValueError: ``name_or_dir`` is neither a registered name nor an existing folder, or
            ``device`` is invalid.
    """
    key = DEFAULT if name_or_dir is None else str(name_or_dir)
    entry = lookup(EXTRACTORS, key)
    if entry is None:
        path = Path(key).expanduser()
        if path.is_dir():
            return load_extractor_dir(path, device)
        known = ", ".join(sorted(EXTRACTORS))
        raise ValueError(f"unknown extractor {key!r}: expected a registered name ({known}) "
                         "or the path of an extractor weights folder")
    folder = entry.path
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(
            f"extractor {entry.name!r} expects its weights at {weights}, which does not exist "
            "(reinstall tlgan or retrain with `tlgan extractor train`)"
        )
    actual = sha256_file(weights)
    if actual != entry.sha256:
        raise ArtifactError(
            f"extractor {entry.name!r}: {weights} has sha256 {actual[:12]}..., expected "
            f"{entry.sha256[:12]}... from the registry (the file is corrupt or was replaced)"
        )
    config = load_config(folder, kind=KIND, verify=True)
    norm = config.get("normalization") or {}
    if (int(config.get("model", {}).get("input_size", -1)) != entry.input_size
            or len(config.get("attributes", [])) != entry.num_attributes
            or any(tuple(norm.get(k, ())) != tuple(v) for k, v in entry.normalization.items())):
        raise ArtifactError(
            f"extractor {entry.name!r}: {folder / 'config.json'} does not match the registry "
            f"entry (expected input size {entry.input_size}, {entry.num_attributes} "
            f"attributes and normalization {entry_dict(entry)['normalization']})"
        )
    return _build(folder, config, entry.name, actual, device)


def entry_dict(entry: ExtractorEntry) -> dict[str, Any]:
    """JSON-ready view of a registry entry (for listings)."""
    return {
        "name": entry.name,
        "folder": str(entry.path),
        "sha256": entry.sha256,
        "input_size": entry.input_size,
        "num_attributes": entry.num_attributes,
        "normalization": {k: list(v) for k, v in entry.normalization.items()},
        "source": entry.source,
    }
