"""Registries of weights tied to one generator (photo encoders, realism critics): the entry's
shape and the one way a name, a folder or nothing is resolved against a generator.

Such a model records its generator's sha256 in its ``config.json``; with no name given, the
one registered for the generator in use is chosen (None when there is none).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tlgan_base.artifact import ArtifactError
from tlgan_base.registry_entry import WeightsEntry, lookup

__all__ = ["TiedModel", "TiedWeights", "check_generator", "check_pinned", "registered_for",
           "resolve_tied"]


@dataclass(frozen=True)
class TiedWeights(WeightsEntry):
    """A registered model trained for one generator: ``location`` is its weights folder
    relative to the registry's ``weights_dir``; ``sha256`` that of its weights file."""

    generator: str
    generator_sha256: str
    source: str
    description: str = ""
    weights_dir: Path = Path()
    default: bool = False

    @property
    def path(self) -> Path:
        return self.weights_dir / self.location

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "generator": self.generator,
                "generator_sha256": self.generator_sha256, "source": self.source,
                "description": self.description, "default": self.default}


T = TypeVar("T", bound=TiedWeights)


def registered_for(entries: Mapping[str, T], generator_sha256: str) -> T | None:
    """The registered entry trained for the generator with this sha256, if any (the one
    marked ``default`` when several are)."""
    found = [e for e in entries.values() if e.generator_sha256 == generator_sha256]
    return next((e for e in found if e.default), found[0] if found else None)


def resolve_tied(kind: str, entries: Mapping[str, T], spec: str | os.PathLike[str] | None,
                 generator_sha256: str) -> tuple[T | None, Path, str] | None:
    """Where the model ``spec`` names is: (its entry or None for a folder, its folder, its
    name); None when ``spec`` is None and nothing is registered for the generator.

    Raises:
        ValueError: ``spec`` is neither a registered name nor a folder (message starts with
            ``kind``).
    """
    if spec is None:
        entry = registered_for(entries, generator_sha256)
        if entry is None:
            return None
    else:
        entry = lookup(entries, str(spec))
    if entry is not None:
        return entry, entry.path, entry.name
    folder = Path(spec)  # type: ignore[arg-type]
    if not folder.is_dir():
        raise ValueError(f"{kind}: {str(spec)!r} is neither a registered {kind} "
                         f"({', '.join(entries) or 'none registered'}) nor a weights folder")
    return None, folder, str(spec)


def check_pinned(kind: str, entry: TiedWeights | None, file: Path, sha256: str) -> None:
    """Refuse weights whose sha256 differs from the one their registry entry pins.

    Raises:
        ArtifactError: the sha256 differs.
    """
    if entry is not None and sha256 != entry.sha256:
        raise ArtifactError(f"{kind} {entry.name!r}: {file} has sha256 {sha256[:12]}..., the "
                            f"registry pins {entry.sha256[:12]}...")


class TiedModel:
    """What a loaded model tied to a generator is known by: its name (registry name or
    folder) and the sha256 of its weights file; ``config`` its folder's config.json."""

    def __init__(self, name: str, sha256: str, config: dict[str, Any] | None) -> None:
        self._name = name
        self._sha256 = sha256
        self.config = config or {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def sha256(self) -> str:
        return self._sha256


def check_generator(kind: str, name: str, gen_info: Mapping[str, Any], generator_sha256: str,
                    command: str) -> None:
    """Refuse a model whose config's ``generator`` (``gen_info``) is not the generator with
    ``generator_sha256``; ``command`` makes one for it.

    Raises:
        ArtifactError: the sha256 differs.
    """
    gen_sha = str(gen_info.get("sha256"))
    if gen_sha != generator_sha256:
        raise ArtifactError(
            f"{kind} {name!r} was trained for generator {gen_info.get('name')!r} (sha256 "
            f"{gen_sha[:12]}...), not for the generator with sha256 "
            f"{generator_sha256[:12]}...: make one for it with `{command}`")
