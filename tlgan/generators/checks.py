"""Checked loading of generator weights, shared by the registry and the plug-in loader (a
module of its own, so that neither imports the other)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from tlgan_base.artifact import ArtifactError, sha256_file


def verify_file(path: Path, expected: str, what: str) -> None:
    """Raise ArtifactError unless ``path``'s sha256 equals ``expected``."""
    actual = sha256_file(path)
    if actual != expected:
        raise ArtifactError(
            f"{what}: {path} has sha256 {actual[:12]}..., expected {expected[:12]}... "
            "(the file is corrupt or not the expected version)"
        )


def load_state_dict(path: Path, key: str | None, what: str) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a ``weights_only`` checkpoint (``key``: the entry
    holding it), or ArtifactError naming ``what``; never unpickles code."""
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path), device="cpu")
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt archive, refused pickle, ...
        raise ArtifactError(f"{what}: cannot read weights file {path}: {exc}") from exc
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise ArtifactError(f"{what}: {path} has no {key!r} entry")
        obj = obj[key]
    if not isinstance(obj, dict):
        raise ArtifactError(f"{what}: {path} does not hold a state dict")
    return obj


def load_into(module: nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> None:
    """``module.load_state_dict(state)`` (strict), or ArtifactError naming ``what``."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ArtifactError(
            f"{what}: weights in {path} do not fit the architecture: {first}"
        ) from exc
