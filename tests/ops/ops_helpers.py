"""Helpers for the operations tests: real `tlgan serve` processes on loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tlgan.client import Client

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**tlgan: str) -> dict[str, str]:
    """This process's environment without TLGAN_* variables, plus ``tlgan`` (name: value),
    with the venv's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLGAN_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(tlgan)
    return env


class ServerProcess:
    """``tlgan serve`` (or any command line) as a subprocess; output goes to files."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, logs: Path) -> None:
        self.argv = argv
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        logs.mkdir(parents=True, exist_ok=True)
        self.out_path = logs / f"server-{port}.out"
        self.err_path = logs / f"server-{port}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)

    @property
    def stdout(self) -> str:
        """What the server wrote to stdout (the access log)."""
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        """What the server wrote to stderr (its log)."""
        return self.err_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll /readyz until 200; fail with the server's log if it exits or times out."""
        with Client(self.url, timeout=2.0) as client:
            if client.wait_ready(timeout, alive=lambda: self.proc.poll() is None,
                                 interval=0.1):
                return
        if self.proc.poll() is not None:
            pytest.fail(f"server exited with {self.proc.returncode}:\n{self.stderr}")
        self.kill()
        pytest.fail(f"server not ready after {timeout} s:\n{self.stderr}")

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL if still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


StartServer = Callable[..., ServerProcess]


@dataclass(frozen=True)
class TinyArtifacts:
    """A tiny generator plug-in (latent 16, named tiny-dcgan) and an axis bundle for it."""

    plugin: Path
    bundle: Path
    names: list[str]
