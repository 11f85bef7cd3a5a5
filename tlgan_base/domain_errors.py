"""Domain errors shared by every layer: :class:`ConfigError` (the message names the offending
setting) and the helpers that cut the user values an error message echoes. The artifact error
is :class:`tlgan_base.artifact.ArtifactError`."""

from __future__ import annotations

__all__ = ["ECHO_LIMIT", "ConfigError", "Stopped", "clip", "shown"]

#: Error messages cut the user values they echo (names, header values) to this many
#: characters: a 900 KB unknown name must not come back, twice, in a 1.8 MB error.
ECHO_LIMIT = 80


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text``, cut to ``limit`` characters ending in an ellipsis when longer."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """A user value for an error message: ``repr`` of it, cut to about ``limit`` characters
    (strings are cut inside the quotes: ``'xxxx…'``)."""
    if isinstance(value, str):
        return repr(clip(value, limit - 2))
    return clip(repr(value), limit)


class ConfigError(ValueError):
    """A setting or configuration file is invalid (message names the setting)."""


class Stopped(Exception):
    """Long model work (a closed loop, a refinement) was stopped between its steps because
    its ``should_stop()`` turned true (the client left)."""
