"""Running the service: the port, the models, uvicorn, the drain on SIGTERM, the allocator.

:func:`run` is what ``tlgan serve`` (and the Docker image's entrypoint) calls:

1. **The port first.** The listening socket is bound before any model loads, so a busy port
   (or a host that is not this machine's) stops the command at once with one line naming
   ``--port`` / ``TLGAN_PORT`` and exit code 2, not minutes later.
2. **The models** load in a background thread while the port already answers: ``/healthz``
   200, ``/readyz`` 503 ``{"status": "loading"}``, model routes 503 + ``Retry-After`` (so a
   probe or load balancer sees the documented "not ready yet", not a refused connection). A
   missing or corrupt artifact closes the port, prints one line naming the setting
   (``bundle (--bundle / TLGAN_BUNDLE): ...``) and exits 2; SIGTERM while loading exits 0.
3. **The drain.** On SIGTERM (or Ctrl-C) the listener stays open: ``/readyz`` answers 503
   (so load balancers stop sending traffic), ``/healthz`` and ``/metrics`` keep answering,
   new requests for model work get 503 + ``Retry-After`` + ``Connection: close`` (a client
   retries elsewhere), and the requests in flight finish. Once none is left, or after
   ``graceful_timeout`` seconds, the listener closes; requests still running then are
   answered JSON 503 + ``Retry-After`` (one log line each, no traceback); the batcher
   finishes what it accepted and the process exits 0. A second signal stops at once.
4. **Memory.** With glibc's malloc (no jemalloc preloaded), the allocator is tuned at start:
   at most two arenas and a fixed mmap threshold, so large buffers (batches, encoded
   images) go back to the system when freed instead of fragmenting per-thread heaps, which
   made RSS creep under load; ``bench/load.py`` shows the RSS trend.
5. **Reload.** SIGHUP loads the models again (a bundle changed on disk) and swaps them in
   once loaded; a bad bundle keeps the old models (:mod:`api.reload`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from api import loading
from api.app import create_app
from api.http_limits import bounded_httptools
from api.middleware import AccessLogFormatter
from api.reload import install_reload_signal
from api.settings import Settings
from api.state import AppState, state_of
from tlgan_base.artifact import ArtifactError
from tlgan_base.devices import set_threads

log = logging.getLogger("tlgan.api")

#: glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: allocations from this size on are mmapped (and unmapped when freed); freed heap above
#: TRIM_THRESHOLD at its top goes back to the system. 256 KiB (and trim 512 KiB) made every
#: activation of a photo adapter's tuning (batch 3, up to 0.8 MB each, a few MB of
#: temporaries per step) a fresh mapping: 8,800 page faults a step, tuning twice as slow as
#: in a process with glibc's defaults (docs/photos.md); from 16 MiB (trim 32 MiB) it faults
#: no more than with the defaults
MMAP_THRESHOLD = 16 * 1024 * 1024
TRIM_THRESHOLD = 32 * 1024 * 1024


class StartError(Exception):
    """The service cannot start (one line for the user, exit code 2)."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket bound to ``host:port`` (port 0: any free port).

    Raises:
        StartError: the address is in use, not this machine's, or not allowed; the message
            names ``--port`` / ``TLGAN_PORT`` (or ``--host``).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartError(f"host (--host / TLGAN_HOST): cannot resolve {host!r}: "
                         f"{exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise StartError(f"port (--port / TLGAN_PORT): cannot listen on {host}:{port}: "
                         f"{reason}; choose another port or stop what uses it") from None
    sock.set_inheritable(True)
    return sock


def tune_allocator() -> str:
    """Bound glibc malloc's growth (see the module docstring); returns what was done."""
    if not sys.platform.startswith("linux"):
        return "not linux: allocator unchanged"
    with contextlib.suppress(OSError):
        if "jemalloc" in Path("/proc/self/maps").read_text():
            return "jemalloc preloaded: allocator unchanged"
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "no glibc: allocator unchanged"
    ok = all(mallopt(param, value) == 1 for param, value in (
        (_M_ARENA_MAX, 2), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD)))
    return (f"glibc malloc: 2 arenas, mmap threshold {MMAP_THRESHOLD >> 20} MiB" if ok
            else "glibc malloc: mallopt refused a setting")


def configure_logging(settings: Settings) -> None:
    """The service log on stderr and, with ``access_log``, JSON access lines on stdout."""
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(levelname)s:     %(name)s: %(message)s")
    access = logging.getLogger("tlgan.access")
    access.propagate = False
    access.setLevel(settings.log_level.upper())
    if settings.access_log and not access.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(AccessLogFormatter())
        access.addHandler(handler)


def _ignore_signal(sig: int, frame: object) -> None:
    """Signal handler that does nothing (see :func:`run`)."""


def _load_in_thread(settings: Settings) -> asyncio.Future[Any]:
    """:func:`api.loading.build_pipeline` in a daemon thread (a stop while loading need not
    wait for it); the future gets its pipeline or its exception."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(result)
        else:
            done.set_exception(error)

    def work() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = loading.build_pipeline(settings)
        except BaseException as exc:  # handed to the serving loop, which reports it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="tlgan-load-models", daemon=True).start()
    return done


def name_setting(message: str) -> str:
    """A loading error's message with its leading setting named as the user sets it:
    ``bundle: ...`` -> ``bundle (--bundle / TLGAN_BUNDLE): ...``."""
    match = re.match(r"([a-z_]+): ", message)
    if match is None or match.group(1) not in Settings.model_fields:
        return message
    name = match.group(1)
    return (f"{name} (--{name.replace('_', '-')} / TLGAN_{name.upper()}): "
            f"{message[match.end():]}")


def run(settings: Settings) -> int:
    """Serve the API on ``settings`` until SIGTERM/SIGINT; returns the exit code.

    Raises:
        StartError: the port or the models are unusable (one line for the user).
    """
    # Process-wide, so set here (the process's entry point), never in the app factory.
    set_threads(settings.resolved_torch_threads())
    configure_logging(settings)
    log.debug("allocator: %s", tune_allocator() if settings.tune_malloc
              else "unchanged (tune_malloc off)")
    sock = bind_socket(settings.host, settings.port)
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=sock.getsockname()[1],
                            lifespan="off", log_level=settings.log_level, access_log=False,
                            timeout_graceful_shutdown=settings.graceful_timeout,
                            timeout_keep_alive=settings.keep_alive,
                            http=bounded_httptools(settings.max_header_bytes,
                                                   header_timeout=settings.header_timeout,
                                                   body_timeout=settings.body_timeout),
                            h11_max_incomplete_event_size=settings.max_header_bytes)
    server = DrainingServer(config, state_of(app), settings.graceful_timeout)
    loaded = False

    async def serve() -> None:
        nonlocal loaded
        # While it serves, uvicorn routes SIGTERM/SIGINT to DrainingServer.handle_exit; when
        # it stops, it re-raises the signals its own handler captured (ours records none).
        # Should one come anyway, it lands on this no-op rather than killing the process
        # before the lifespan's exit (the batcher finishing its queue).
        previous = {sig: signal.signal(sig, _ignore_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        # uvicorn's start-up lines would precede a load failure's one line: quiet until ready
        uvicorn_log = logging.getLogger("uvicorn.error")
        level = uvicorn_log.level
        uvicorn_log.setLevel(max(level, logging.WARNING))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            if state_of(app).pipeline is None:
                log.debug("loading models (generator=%s, extractor=%s, bundle=%s, device=%s)"
                          " while /readyz answers 503", settings.generator or "default",
                          settings.extractor or "default", settings.bundle or "default",
                          settings.device)
                loading = _load_in_thread(settings)
                await asyncio.wait({serving, loading}, return_when=asyncio.FIRST_COMPLETED)
                if not loading.done():  # SIGTERM/SIGINT before the models were loaded
                    loading.cancel()
                    await serving
                    log.info("stopped before the models were loaded")
                    return
                if loading.exception() is not None:
                    server.should_exit = server.force_exit = True
                    await serving
                state_of(app).pipeline = loading.result()  # raises the loading error
            async with app.router.lifespan_context(app):
                loaded = True
                uvicorn_log.setLevel(level)
                host, port = sock.getsockname()[:2]
                log.info("listening on http://%s:%d (API docs: /docs, metrics: /metrics)",
                         f"[{host}]" if ":" in host else host, port)
                stop_reload = install_reload_signal(app, asyncio.get_running_loop())  # SIGHUP
                try:
                    await serving
                finally:
                    stop_reload()
        finally:
            uvicorn_log.setLevel(level)
            if not serving.done():
                server.should_exit = server.force_exit = True
                with contextlib.suppress(Exception):
                    await serving
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    try:
        # uvicorn's loop choice (uvloop when installed), as `uvicorn.run` would make.
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(serve())
    except KeyboardInterrupt:  # pragma: no cover - interactive stop
        pass
    except Exception as exc:
        if loaded:
            raise

        # One line: some loaders embed multi-line library messages.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
        if isinstance(exc, (ValueError, ArtifactError)):
            raise StartError(name_setting(first)) from None
        raise StartError(f"cannot load the models: {type(exc).__name__}: {first}") from None
    finally:
        sock.close()
    return 0


class DrainingServer(uvicorn.Server):
    """uvicorn's Server with the drain described in the module docstring: the first signal
    starts the drain (``state.draining``), the server stops once ``state.work`` counts no
    request in flight or ``grace`` seconds have passed; a second signal stops at once."""

    def __init__(self, config: uvicorn.Config, state: AppState, grace: float) -> None:
        super().__init__(config)
        self.state = state
        self.grace = grace
        self.drain_started: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Signal handler (installed by uvicorn while it serves)."""
        if self.drain_started is not None:  # a second signal: stop now
            self.should_exit = self.force_exit = True
            return
        self.drain_started = time.monotonic()
        self.state.draining = True  # /readyz -> 503, new work -> 503
        log.info("draining: %d request(s) in flight; /readyz answers 503 (up to %s s)",
                 self.state.work.count, self.grace)

    async def on_tick(self, counter: int) -> bool:
        """Every 0.1 s: end the drain once nothing is in flight or the grace is over."""
        if self.drain_started is not None and not self.should_exit:
            waited = time.monotonic() - self.drain_started
            if self.state.work.count == 0 or waited >= self.grace:
                # what still runs after the grace gets a last second, then its JSON 503
                # (api.middleware.CatchAllMiddleware answers cancelled requests)
                self.config.timeout_graceful_shutdown = 1 if waited >= self.grace else 5
                self.should_exit = True
        return await super().on_tick(counter)
