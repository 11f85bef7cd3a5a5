"""Model work on behalf of one request: no work for clients that left, no endless waits.

:class:`RequestJobs` (the routes' ``JobsDep``) submits jobs to the app's
:class:`~api.batching.Batcher` and awaits them while watching the connection:

* when the client disconnects, a job that has not started is cancelled (it never renders)
  and a running one is asked to stop between its steps; the request ends with
  :class:`ClientDisconnected`, logged with status 499;
* a job still waiting after ``max_queue_wait`` seconds is cancelled and the request gets
  :class:`QueueTimeout` (503 + ``Retry-After``); once started, a job runs to its end.

Coming back from the model (or from a thread: big encodes, decodes), a request takes a turn
on the event loop (:class:`api.middleware.LoopTurns`) before it computes there: the answers of
a whole batch arrive at once, and encoding them all in one turn of the loop would hold every
other socket (``/healthz`` included) until they are done.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive

from api.batching import Batcher, JobFuture, RenderResult
from api.media import INLINE_PIXELS, off_loop
from api.middleware import LoopTurns
from tlgan.pipeline import Pipeline
from tlgan.upscale.upscaler import UPSCALE_PASSES

if TYPE_CHECKING:
    from api.settings import Settings

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away before its answer was ready (logged as 499)."""


class QueueTimeout(Exception):
    """The job waited longer than the maximum queue wait (HTTP 503)."""

    def __init__(self, waited: float, retry_after: int) -> None:
        super().__init__(f"the job waited {waited:.0f} s for the model, longer than this "
                         "service's maximum queue wait; retry later")
        self.retry_after = retry_after


async def _disconnected(receive: Receive) -> None:
    """Return once the client has disconnected (the request body is already read, so the
    next ASGI message is ``http.disconnect``)."""
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            return


#: poll events meaning the peer closed its side (Linux: POLLRDHUP; elsewhere HUP/ERR only)
_CLOSED = getattr(select, "POLLRDHUP", 0) | select.POLLHUP | select.POLLERR


def peer_closed(fd: int) -> bool:
    """Whether the peer of socket ``fd`` has closed the connection, asked of the kernel (a
    zero-timeout poll: no data is read), so it is known even while the event loop is too
    busy to have noticed."""
    poller = select.poll()
    poller.register(fd, _CLOSED)
    return any(events & _CLOSED for _, events in poller.poll(0))


def connection_check(receive: Receive | None) -> Callable[[], bool] | None:
    """A thread-safe "is the client still connected?" for the worker threads: false once
    uvicorn's request cycle has seen the connection lost (its ``disconnected`` flag) or the
    kernel says the peer closed the socket, so a job is skipped even before the watcher task
    has run (under a flood of requests the event loop notices late). None under servers
    without that flag (the watcher alone then cancels)."""
    while receive is not None and hasattr(receive, "inner"):
        receive = receive.inner
    cycle = getattr(receive, "__self__", None)
    if cycle is None or not isinstance(getattr(cycle, "disconnected", None), bool):
        return None
    transport = getattr(cycle, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    fd = sock.fileno() if sock is not None else -1

    def connected() -> bool:
        if cycle.disconnected:
            return False
        return fd < 0 or not peer_closed(fd)

    return connected


def _retrieve(outcome: asyncio.Future[Any]) -> None:
    """Done callback of a task or future nobody awaits any more (a cancelled watcher, an
    abandoned job): read its outcome so that asyncio never reports an unretrieved
    exception."""
    if not outcome.cancelled():
        outcome.exception()


class RequestJobs:
    """Submit model jobs for one request; see the module docstring.

    ``pipeline`` and ``settings`` are the request's (the face routes read them from here:
    one FastAPI dependency instead of three)."""

    def __init__(self, batcher: Batcher, receive: Receive | None,
                 max_queue_wait: float, pipeline: Pipeline | None = None,
                 settings: Settings | None = None,
                 encode_slots: asyncio.Semaphore | None = None,
                 loop_turns: LoopTurns | None = None) -> None:
        self.batcher = batcher
        self.loop_turns = loop_turns  # see api.middleware.LoopTurnMiddleware
        self.encode_slots = encode_slots
        self.receive = receive
        self.max_queue_wait = max_queue_wait
        self.connected = connection_check(receive)
        self.pipeline: Pipeline = pipeline if pipeline is not None else batcher.pipeline
        self._settings = settings
        #: the request's memory estimate (bytes, :mod:`api.memory`), carried by its model jobs
        #: for admission; set by the route once it has checked it
        self.memory = 0.0

    @property
    def settings(self) -> Settings:
        """The service's settings (only when given)."""
        if self._settings is None:
            raise RuntimeError("RequestJobs: no settings given")
        return self._settings

    async def render(self, z: np.ndarray, with_features: bool = True) -> RenderResult:
        """Render (and label) latents ``(n, L)``."""
        result: RenderResult = await self.wait(
            self.batcher.submit(z, with_features, connected=self.connected,
                                pipeline=self.pipeline, memory=self.memory))
        return result

    async def call(self, fn: Callable[[Pipeline, Callable[[], bool]], T], cost: float) -> T:
        """Run ``fn(pipeline, stop)`` on a worker thread; ``cost`` is the most face-passes it
        may take; ``stop()`` turns true when the client has left (``fn`` should then raise
        :class:`api.batching.JobStopped` between its steps)."""
        result: T = await self.wait(self.batcher.submit_call(fn, cost, stoppable=True,
                                                             connected=self.connected,
                                                             pipeline=self.pipeline,
                                                             memory=self.memory))
        return result

    async def display(self, images: np.ndarray, size: int | None) -> np.ndarray:
        """The faces to encode at ``size`` px (:meth:`tlgan.pipeline.Pipeline.for_display`:
        through the upscaler for large sizes, as a model job; unchanged otherwise)."""
        if not self.pipeline.upscales(size):
            return images
        result: np.ndarray = await self.call(lambda p, stop: p.for_display(images, size),
                                             cost=len(images) * UPSCALE_PASSES)
        return result

    async def encode(self, images: np.ndarray, size: int | None, fn: Callable[..., T],
                     *args: object) -> T:
        """Encode answers: :func:`api.media.off_loop`, big encodes bounded by the app's
        encode slots."""
        side = size or int(images.shape[1])
        if int(images.shape[0]) * side * side <= INLINE_PIXELS:  # inline: on the loop
            return await off_loop(images, size, fn, *args, limit=self.encode_slots)
        result = await off_loop(images, size, fn, *args, limit=self.encode_slots)
        await self._turn()
        return result

    async def decode(self, fn: Callable[..., T], *args: object) -> T:
        """Decode an upload (``fn(*args)``) in the thread pool, at most the app's encode
        slots at once (a large photo holds tens of MB while it is decoded)."""
        if self.encode_slots is None:
            result = await run_in_threadpool(fn, *args)
        else:
            async with self.encode_slots:
                result = await run_in_threadpool(fn, *args)
        await self._turn()
        return result

    async def _turn(self) -> None:
        """Back from waiting: take a turn on the event loop before computing on it (the
        answers of a whole batch come back at once)."""
        if self.loop_turns is not None:
            await self.loop_turns.enter()

    async def wait(self, future: JobFuture) -> Any:
        """Await ``future``, then take a turn on the loop; abandon it when the client leaves
        or it waits too long."""
        result = await self._wait(future)
        await self._turn()
        return result

    async def _wait(self, future: JobFuture) -> Any:
        loop = asyncio.get_running_loop()
        waiting = asyncio.wrap_future(future, loop=loop)
        watch = (loop.create_task(_disconnected(self.receive))
                 if self.receive is not None else None)
        deadline = loop.time() + self.max_queue_wait
        try:
            while True:
                pending: set[asyncio.Future[Any]] = {waiting}
                if watch is not None:
                    pending.add(watch)
                timeout = None if future.started_at is not None else max(
                    0.0, deadline - loop.time())
                done, _ = await asyncio.wait(pending, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if waiting in done:
                    if waiting.cancelled():  # dropped by the worker: its client is gone
                        raise ClientDisconnected("the client disconnected")
                    return waiting.result()
                if watch is not None and watch in done:
                    future.abandon()
                    raise ClientDisconnected("the client disconnected")
                if (future.started_at is None and loop.time() >= deadline
                        and future.abandon()):
                    self.batcher.expired()
                    raise QueueTimeout(self.max_queue_wait, self.batcher.retry_after())
        finally:
            if watch is not None:
                # Cancelled, not awaited: awaiting would cost the answer one more turn of the
                # event loop. The task is blocked in ``receive`` and takes the cancellation at
                # its next step, consuming nothing more.
                if watch.done():
                    _retrieve(watch)
                else:
                    watch.cancel()
                    watch.add_done_callback(_retrieve)
            if not waiting.done():
                # nobody awaits it any more: stop it, and take its outcome when it comes
                # (else asyncio logs "exception was never retrieved")
                future.abandon()
                waiting.add_done_callback(_retrieve)
