"""Helpers for the operations tests: real `tlgan serve` processes on loopback ports."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tlgan.server_process import ServerProcess, scrubbed_env

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def clean_env(**tlgan: str) -> dict[str, str]:
    """This process's environment without TLGAN_* variables, plus ``tlgan`` (name: value),
    with the venv's bin first on PATH."""
    env = scrubbed_env(PYTHONUNBUFFERED="1")
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(tlgan)
    return env


StartServer = Callable[..., ServerProcess]


@dataclass(frozen=True)
class TinyArtifacts:
    """A tiny generator plug-in (latent 16, named tiny-dcgan) and an axis bundle for it."""

    plugin: Path
    bundle: Path
    names: list[str]
