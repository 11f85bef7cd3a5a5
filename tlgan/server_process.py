"""A real ``tlgan serve`` in a subprocess, for benches and tests: the one server harness.

    from tlgan.server_process import running_server

    with running_server("--extractor", "none", env=scrubbed_env(TLGAN_TORCH_THREADS="1")) as srv:
        httpx.post(f"{srv.url}/generate", json={"seed": 1})
    print(srv.exit_code, srv.stderr)

:func:`running_server` picks a free loopback port, starts the server with the given options
and environment, waits for ``GET /readyz`` (:meth:`tlgan.client.Client.wait_ready`), yields
the :class:`ServerProcess` (its URL, a :meth:`~ServerProcess.client`, the process and its
logs) and stops it on the way out: SIGTERM (the graceful drain), then SIGKILL after a
timeout. The server's stdout (the access log) and stderr (its log) go to files, so a busy log
never blocks it, and stay readable after it has exited.

The server runs as a command line (by default ``python -m api.cli serve``): the ``tlgan``
package never imports ``api``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tlgan.client import Client

#: how the server is started unless told otherwise: this interpreter, ``-m api.cli``
DEFAULT_LAUNCHER: tuple[str, ...] = (sys.executable, "-m", "api.cli")
LOOPBACK = "127.0.0.1"


class ServerNotReady(RuntimeError):
    """The server exited (``exited``), or did not answer ``GET /readyz`` with 200 in time;
    the message says which, with the end of its log; ``last_words``: its last log line."""

    def __init__(self, message: str, *, exited: bool, last_words: str) -> None:
        super().__init__(message)
        self.exited = exited
        self.last_words = last_words


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def scrubbed_env(**variables: str) -> dict[str, str]:
    """This process's environment without any ``TLGAN_*`` variable, plus ``variables``: a
    server configured by its caller alone, never by the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLGAN_")}
    env.update(variables)
    return env


class ServerProcess:
    """``[*launcher, "serve", "--host", host, "--port", port, *options]`` as a subprocess.

    ``env`` is the whole environment (None: this process's); ``cwd`` its working folder;
    ``logs``: a folder for ``server-PORT.out`` / ``server-PORT.err`` (None: anonymous
    temporary files). Nothing waits here: see :meth:`wait_ready` and :func:`running_server`.
    """

    def __init__(self, options: Sequence[str] = (), *, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, logs: Path | None = None,
                 launcher: Sequence[str] = DEFAULT_LAUNCHER, host: str = LOOPBACK,
                 port: int | None = None) -> None:
        self.host = host
        self.port = free_port(host) if port is None else port
        self.url = f"http://{host}:{self.port}"
        self.argv = [*launcher, "serve", "--host", host, "--port", str(self.port), *options]
        self._out = self._log_file(logs, "out")
        self._err = self._log_file(logs, "err")
        self.proc = subprocess.Popen(self.argv, env=None if env is None else dict(env),
                                     cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err)

    def _log_file(self, logs: Path | None, kind: str) -> IO[bytes]:
        if logs is None:
            return tempfile.TemporaryFile()  # open while the server lives (close())
        logs.mkdir(parents=True, exist_ok=True)
        return open(logs / f"server-{self.port}.{kind}", "w+b")

    @staticmethod
    def _read(file: IO[bytes]) -> str:
        # pread: the server shares this file's offset; moving it would make it overwrite
        fd = file.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.proc.pid

    @property
    def stdout(self) -> str:
        """What the server wrote to stdout so far (the access log)."""
        return self._read(self._out)

    @property
    def stderr(self) -> str:
        """What the server wrote to stderr so far (its log)."""
        return self._read(self._err)

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None while the server runs."""
        return self.proc.poll()

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def last_words(self) -> str:
        """The last non-empty line of the server's log, or its exit code."""
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit code {self.proc.returncode}"

    def client(self, timeout: float = 30.0, api_key: str | None = None) -> Client:
        """A :class:`~tlgan.client.Client` on this server (close it, or use it in ``with``)."""
        return Client(self.url, api_key=api_key, timeout=timeout)

    def wait_ready(self, timeout: float = 300.0, interval: float = 0.1) -> None:
        """Poll ``GET /readyz`` until 200. Raises :class:`ServerNotReady` as soon as the
        process exits, or after ``timeout`` seconds (the server is then stopped)."""
        with self.client(timeout=2.0) as client:
            if client.wait_ready(timeout, alive=self.alive, interval=interval):
                return
        if not self.alive():
            raise ServerNotReady(f"the server exited with {self.proc.returncode}:\n"
                                 f"{self.stderr[-4000:]}", exited=True,
                                 last_words=self.last_words())
        self.stop()
        raise ServerNotReady(f"the server was not ready after {timeout:g} s:\n"
                             f"{self.stderr[-4000:]}", exited=False,
                             last_words=self.last_words())

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (the graceful drain), wait up to ``timeout`` seconds, then SIGKILL;
        returns the exit code (negative: the signal that ended it)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL if still running, and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def close(self) -> None:
        """Kill the server if it still runs and close its log files (their text is gone
        when they were anonymous)."""
        self.kill()
        self._out.close()
        self._err.close()


@contextmanager
def running_server(*options: str, env: Mapping[str, str] | None = None,
                   cwd: str | Path | None = None, logs: Path | None = None,
                   launcher: Sequence[str] = DEFAULT_LAUNCHER, ready_timeout: float = 300.0,
                   stop_timeout: float = 60.0) -> Iterator[ServerProcess]:
    """Start ``tlgan serve *options`` on a free loopback port (see :class:`ServerProcess`),
    wait until it is ready (:class:`ServerNotReady` if it is not) and yield it; afterwards
    stop it (:meth:`ServerProcess.stop`); its ``exit_code`` and logs stay readable after."""
    server = ServerProcess(options, env=env, cwd=cwd, logs=logs, launcher=launcher)
    try:
        server.wait_ready(ready_timeout)
        yield server
    finally:
        server.stop(stop_timeout)
