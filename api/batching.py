"""Dynamic micro-batching: concurrent render requests share one forward pass.

One worker thread owns all model work. Requests put *jobs* on a bounded queue:

* a render job (latents ``(n, L)`` + ``with_features``) is batched: the worker takes the
  first job, then keeps taking queued render jobs until ``max_batch`` faces are collected or
  the time window has passed since the first job was queued, concatenates their latents,
  calls ``pipeline.render_and_label`` once (once per ``with_features`` value present) and
  hands each job its slice of faces / probabilities;
* a call job (any function of the pipeline, e.g. feature-conditioned generation, which
  renders several times) runs alone, in queue order.

The window is adaptive: the worker waits for more jobs only while requests arrive faster
than the window (an exponential moving average of the gaps between submissions), so a lone
client never pays the window while a burst is grouped. Under load the queue fills while the
model is busy, and the next batch takes everything waiting without waiting at all.

The queue is bounded: :meth:`Batcher.submit` raises :class:`QueueFull` when ``queue_size``
jobs are waiting, which the API turns into 503 + ``Retry-After``. Results do not depend on
batching (each face is computed independently; see the determinism tests).

Nothing here touches the event loop: the async wrappers await a ``concurrent.futures``
future that the worker completes.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from tlgan.pipeline import Pipeline

log = logging.getLogger("tlgan.api.batching")

T = TypeVar("T")
RenderResult = tuple[np.ndarray, np.ndarray | None]


class QueueFull(Exception):
    """The render queue is full; the caller should retry later (HTTP 503)."""

    def __init__(self, depth: int) -> None:
        super().__init__(f"the render queue is full ({depth} requests waiting); retry later")
        self.depth = depth


class BatcherStopped(Exception):
    """The batcher is not running (the service is starting or shutting down)."""


@dataclass
class BatchInfo:
    """What one forward pass did (passed to ``on_batch`` hooks)."""

    faces: int
    jobs: int
    with_features: bool
    seconds: float
    queue_depth: int


@dataclass
class _RenderJob:
    z: np.ndarray
    with_features: bool
    future: concurrent.futures.Future[RenderResult]
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class _CallJob:
    fn: Callable[[Pipeline], Any]
    future: concurrent.futures.Future[Any]
    queued_at: float = field(default_factory=time.perf_counter)


_Job = _RenderJob | _CallJob
_STOP = object()


class Batcher:
    """Groups render jobs from many requests into batched forward passes on one thread.

    Args:
        pipeline: the models.
        window_ms: the longest time a job waits for others to join its batch.
        max_batch: the most faces in one forward pass (a single larger job runs alone).
        queue_size: the most jobs waiting; beyond it :meth:`submit` raises QueueFull.
        on_batch: optional hook called (on the worker thread) after every forward pass.
        adaptive: wait for the window only while jobs arrive faster than it (see module
            docstring); False always waits the full window when the queue runs dry.
    """

    def __init__(self, pipeline: Pipeline, *, window_ms: float = 2.0, max_batch: int = 64,
                 queue_size: int = 256, on_batch: Callable[[BatchInfo], None] | None = None,
                 adaptive: bool = True) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: must be >= 1, got {max_batch}")
        if queue_size < 1:
            raise ValueError(f"queue_size: must be >= 1, got {queue_size}")
        if window_ms < 0:
            raise ValueError(f"window_ms: must be >= 0, got {window_ms}")
        self.pipeline = pipeline
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.queue_size = queue_size
        self.adaptive = adaptive
        self.hooks: list[Callable[[BatchInfo], None]] = [on_batch] if on_batch else []
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._carry: collections.deque[_Job] = collections.deque()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._accepting = True
        self._last_submit = 0.0
        self._gap = float("inf")  # EWMA of the time between submissions (s)
        self._stats: dict[str, Any] = {
            "jobs": 0, "faces": 0, "batches": 0, "calls": 0, "rejected": 0,
            "last_batch_size": 0, "max_batch_size": 0, "busy_seconds": 0.0,
            "batch_sizes": {},
        }

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Batcher:
        """Start the worker thread (idempotent); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tlgan-batcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting jobs, finish queued ones, and join the worker thread."""
        self._accepting = False
        if self._thread is None:
            self._fail_pending()
            return
        self._queue.put(_STOP)  # may block briefly if full: the worker keeps draining
        self._thread.join(timeout)
        self._thread = None
        self._fail_pending()

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- submitting (any thread) -----------------------------------------------------------
    def submit(self, z: np.ndarray, with_features: bool = True
               ) -> concurrent.futures.Future[RenderResult]:
        """Queue latents ``(n, L)`` for rendering; the future yields (faces, probs | None)."""
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[0] < 1:
            raise ValueError(f"latent: expected shape (n, L) with n >= 1, got {z.shape}")
        fut: concurrent.futures.Future[RenderResult] = concurrent.futures.Future()
        self._put(_RenderJob(z, bool(with_features), fut), z.shape[0])
        return fut

    def submit_call(self, fn: Callable[[Pipeline], T]) -> concurrent.futures.Future[T]:
        """Queue ``fn(pipeline)`` to run alone on the worker thread."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(_CallJob(fn, fut), 0)
        return fut

    async def render(self, z: np.ndarray, with_features: bool = True) -> RenderResult:
        """Async: render (and label) latents through the batcher."""
        return await asyncio.wrap_future(self.submit(z, with_features))

    async def call(self, fn: Callable[[Pipeline], T]) -> T:
        """Async: run ``fn(pipeline)`` on the worker thread."""
        return await asyncio.wrap_future(self.submit_call(fn))

    def _put(self, job: _Job, faces: int) -> None:
        if not self._accepting:
            raise BatcherStopped("the service is shutting down")
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                self._stats["rejected"] += 1
            raise QueueFull(self._queue.qsize()) from None
        now = time.perf_counter()
        with self._lock:
            if self._last_submit:
                gap = now - self._last_submit
                self._gap = gap if self._gap == float("inf") else 0.7 * self._gap + 0.3 * gap
            self._last_submit = now
            self._stats["jobs"] += 1
            self._stats["faces"] += faces

    # -- stats -----------------------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        """Jobs waiting (not counting the batch being computed)."""
        return self._queue.qsize() + len(self._carry)

    def stats(self) -> dict[str, Any]:
        """A snapshot: queue depth, counters and the batch-size histogram."""
        with self._lock:
            snap = dict(self._stats)
            snap["batch_sizes"] = dict(self._stats["batch_sizes"])
        snap["queue_depth"] = self.queue_depth
        snap["queue_size"] = self.queue_size
        snap["max_batch"] = self.max_batch
        snap["window_ms"] = self.window * 1000.0
        return snap

    # -- worker ----------------------------------------------------------------------------
    def _next(self, timeout: float | None) -> Any:
        if self._carry:
            return self._carry.popleft()
        try:
            if timeout is None:
                return self._queue.get()
            if timeout <= 0:
                return self._queue.get_nowait()
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _run(self) -> None:
        while True:
            job = self._next(None)
            if job is _STOP:
                self._drain_after_stop()
                return
            if not job.future.set_running_or_notify_cancel():
                continue  # the request went away
            if isinstance(job, _CallJob):
                self._run_call(job)
                continue
            batch, stop = self._collect(job)
            self._run_batch(batch)
            if stop:
                self._drain_after_stop()
                return

    def _collect(self, first: _RenderJob) -> tuple[list[_RenderJob], bool]:
        """Gather render jobs to join ``first``; returns them and whether STOP was seen."""
        batch = [first]
        faces = first.z.shape[0]
        with self._lock:
            wait = self.window > 0 and (not self.adaptive or self._gap < self.window)
        deadline = first.queued_at + self.window if wait else 0.0
        while faces < self.max_batch:
            job = self._next(deadline - time.perf_counter())
            if job is None:
                break
            if job is _STOP:
                return batch, True
            if isinstance(job, _CallJob) or faces + job.z.shape[0] > self.max_batch:
                self._carry.append(job)  # runs next, in order
                break
            if not job.future.set_running_or_notify_cancel():
                continue
            batch.append(job)
            faces += job.z.shape[0]
        return batch, False

    def _run_batch(self, batch: list[_RenderJob]) -> None:
        for flag in (False, True):
            group = [j for j in batch if j.with_features is flag]
            if not group:
                continue
            z = np.concatenate([j.z for j in group]) if len(group) > 1 else group[0].z
            t0 = time.perf_counter()
            try:
                images, probs = self.pipeline.render_and_label(z, with_features=flag)
            except BaseException as exc:  # handed to the requests, never kills the worker
                for j in group:
                    j.future.set_exception(exc)
                continue
            seconds = time.perf_counter() - t0
            start = 0
            for j in group:
                n = j.z.shape[0]
                j.future.set_result((images[start:start + n],
                                     None if probs is None else probs[start:start + n]))
                start += n
            self._record(BatchInfo(int(z.shape[0]), len(group), flag, seconds, self.queue_depth))

    def _run_call(self, job: _CallJob) -> None:
        t0 = time.perf_counter()
        try:
            result = job.fn(self.pipeline)
        except BaseException as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)
        with self._lock:
            self._stats["calls"] += 1
            self._stats["busy_seconds"] += time.perf_counter() - t0

    def _record(self, info: BatchInfo) -> None:
        with self._lock:
            s = self._stats
            s["batches"] += 1
            s["last_batch_size"] = info.faces
            s["max_batch_size"] = max(s["max_batch_size"], info.faces)
            s["busy_seconds"] += info.seconds
            s["batch_sizes"][info.faces] = s["batch_sizes"].get(info.faces, 0) + 1
        for hook in self.hooks:
            try:
                hook(info)
            except Exception:  # a broken metrics hook must not break rendering
                log.exception("batch hook failed")

    def _drain_after_stop(self) -> None:
        """Finish the jobs already accepted before STOP (graceful shutdown)."""
        while True:
            job = self._next(0)
            if job is None:
                return
            if job is _STOP or not job.future.set_running_or_notify_cancel():
                continue
            if isinstance(job, _CallJob):
                self._run_call(job)
            else:
                self._run_batch([job])

    def _fail_pending(self) -> None:
        while True:
            job = self._next(0)
            if job is None:
                return
            if job is not _STOP and job.future.set_running_or_notify_cancel():
                job.future.set_exception(BatcherStopped("the service is shutting down"))
