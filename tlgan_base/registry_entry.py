"""The one shape of a registry entry, shared by the generator, extractor and bundle
registries, and the one way they look a name up.

An entry says what a name stands for: ``name``, ``location`` (where the weights are, in the
registry's own terms), ``sha256`` (the pinned checksum of the weights file; ``""`` when the
artifact's own ``config.json`` checksums are what is checked) and ``metadata`` (whatever
else the registry records: the fields a subclass adds). Each registry keeps a ``DEFAULT``
name and a dict of entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

__all__ = ["WeightsEntry", "lookup"]


@dataclass(frozen=True)
class WeightsEntry:
    """A registered artifact: its name, where it is, and its pinned sha256."""

    name: str
    location: str
    sha256: str

    @property
    def metadata(self) -> dict[str, Any]:
        """The fields a registry adds to name, location and sha256."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("name", "location", "sha256")}


E = TypeVar("E", bound=WeightsEntry)


def lookup(entries: Mapping[str, E], name: str | None, default: str | None = None) -> E | None:
    """The entry registered as ``name`` (``None`` or ``""``: ``default``); None when no entry
    has that name (the caller then tries a path, or says what is registered)."""
    key = name or default
    return entries.get(key) if key else None
