"""Reloading the models without a restart: ``tlgan serve`` reloads on SIGHUP.

After ``tlgan axes add`` (or ``teach``, ``import``: each rewrites the bundle folder
atomically) on the bundle a server serves, ``kill -HUP <pid>`` makes it serve the new axes:

1. The whole pipeline is loaded again from the same settings (generator, extractor, bundle,
   encoder), in a worker thread, while the old one keeps serving.
2. Only once it has loaded completely is it swapped in, in one step on the event loop: the
   app's state, the batcher's default and the cached OpenAPI document (its axis names).
   Requests already admitted finish on the models they started with (each job carries its
   request's pipeline, :mod:`api.batching`); later requests get the new ones.
3. A load that fails (a corrupt, half-copied or mismatched bundle) keeps the old models and
   logs one line; the process goes on serving. Reloads run one at a time, and none starts
   while the server drains.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import loading
from api.state import state_of
from tlgan.pipeline import Pipeline

log = logging.getLogger("tlgan.api")


def swap_pipeline(app: FastAPI, pipeline: Pipeline) -> None:
    """Serve ``pipeline`` from now on (call on the event loop)."""
    state = state_of(app)
    state.pipeline = pipeline
    if state.batcher is not None:
        state.batcher.pipeline = pipeline
    app.openapi_schema = None  # rebuilt on the next request, with the new axes


async def reload_models(app: FastAPI) -> bool:
    """Load the models named by the app's settings again and swap them in; False (the old
    ones kept, one log line) when loading fails or the server is draining."""
    state = state_of(app)
    lock = state.reload_lock
    if lock is None:
        lock = state.reload_lock = asyncio.Lock()
    async with lock:
        old = state.pipeline
        kept = f"still serving bundle {getattr(old, 'bundle_id', None)}"
        if state.draining or not state.ready:
            log.warning("reload refused: the server is %s; %s",
                        "draining" if state.draining else "not ready", kept)
            return False
        log.info("reloading the models (SIGHUP)")
        try:
            new: Pipeline = await run_in_threadpool(loading.build_pipeline, state.settings)
        except Exception as exc:  # any failure keeps the old models: one line, no traceback
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
            log.error("reload failed, %s: %s", kept, first)
            return False
        if state.draining:
            log.warning("reload dropped: the server started draining; %s", kept)
            return False
        swap_pipeline(app, new)
        log.info("reloaded: %s", new.summary())
        return True


def install_reload_signal(app: FastAPI, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Reload on SIGHUP (where the platform has it); returns the function that uninstalls."""
    if not hasattr(signal, "SIGHUP"):  # pragma: no cover - Windows
        return lambda: None
    tasks: set[asyncio.Task[bool]] = set()

    def on_hup() -> None:
        task = loop.create_task(reload_models(app))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def uninstall() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    return uninstall
