"""Domain errors shared by the pipeline, the CLI and the API."""

from __future__ import annotations

from axes.artifact import ArtifactError

__all__ = ["ArtifactError", "ConfigError"]


class ConfigError(ValueError):
    """A setting or configuration file is invalid (message names the setting)."""
