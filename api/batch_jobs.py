"""What the batcher's lanes carry and report: jobs and their futures, the errors of
admission, and the counters of what was done (the scheduling itself: :mod:`api.batching`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tlgan.pipeline import Pipeline, Stopped

log = logging.getLogger("tlgan.api.batching")

RenderResult = tuple[np.ndarray, np.ndarray | None]


class QueueFull(Exception):
    """The lane is full (jobs or seconds of queued work); retry later (HTTP 503)."""

    def __init__(self, depth: int, backlog_s: float, reason: str = "",
                 cap: float = 3600.0) -> None:
        why = reason or f"{depth} requests waiting"
        self.retry_after = retry_after(backlog_s, cap)
        super().__init__(f"the render queue is full ({why}); retry in {self.retry_after} s")
        self.depth = depth
        self.backlog_s = backlog_s


class BatcherStopped(Exception):
    """The batcher is not running (the service is starting or shutting down)."""


#: what a stoppable job raises when asked to stop between its steps
JobStopped = Stopped


def retry_after(seconds: float, cap: float = 3600.0) -> int:
    """A Retry-After value: ``seconds`` rounded up, at least 1 and at most ``cap``."""
    top = max(1, math.ceil(cap)) if math.isfinite(cap) else 3600
    if not math.isfinite(seconds):
        return top
    return int(min(max(1, math.ceil(seconds)), top))


class JobFuture(concurrent.futures.Future[Any]):
    """A job's future, plus a way to stop it once it runs (:meth:`abandon`)."""

    def __init__(self, connected: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self.stop_event = threading.Event()
        self.started_at: float | None = None
        self.connected = connected  # False once the client left (checked before starting)

    def abandon(self) -> bool:
        """Nobody wants the result: cancel the job if it has not started (True), else ask
        it to stop between steps (False)."""
        if self.cancel():
            return True
        self.stop_event.set()
        return False

    def stopped(self) -> bool:
        """Whether the running job should stop: abandoned, or its client is gone."""
        return self.stop_event.is_set() or (self.connected is not None
                                            and not self.connected())


@dataclass
class BatchInfo:
    """What one forward pass did (passed to ``on_batch`` hooks)."""

    faces: int
    jobs: int
    with_features: bool
    seconds: float
    queue_depth: int


@dataclass
class RenderJob:
    """Faces to render (and label) in a shared forward pass."""

    z: np.ndarray
    with_features: bool
    future: JobFuture
    cost: float
    pipeline: Pipeline  # the models it runs on: the request's (a reload swaps only later ones)
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class CallJob:
    """A function of the pipeline, run alone."""

    fn: Callable[..., Any]
    wants_stop: bool
    future: JobFuture
    cost: float
    pipeline: Pipeline  # the models it runs on: the request's (a reload swaps only later ones)
    queued_at: float = field(default_factory=time.perf_counter)


Job = RenderJob | CallJob


class BatchCounters:
    """What the batcher did, counted thread-safely, and the hooks told of each forward pass.

    Args:
        hooks: called (on a worker thread) with each pass's :class:`BatchInfo`; a hook
            that raises is logged, never breaks rendering.
    """

    def __init__(self, hooks: list[Callable[[BatchInfo], None]]) -> None:
        self.hooks = hooks
        self._lock = threading.Lock()
        self._stats: dict[str, Any] = {
            "jobs": 0, "faces": 0, "rendered": 0, "done": 0, "batches": 0, "calls": 0,
            "rejected": 0,
            "cancelled": 0, "stopped": 0, "expired": 0,
            "last_batch_size": 0, "max_batch_size": 0, "busy_seconds": 0.0,
            "batch_sizes": {},
        }

    def count(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` to counter ``name``."""
        self.add({name: amount})

    def add(self, amounts: Mapping[str, float]) -> None:
        """Add to several counters at once (a snapshot sees all or none of it)."""
        with self._lock:
            for name, amount in amounts.items():
                self._stats[name] += amount

    def record(self, info: BatchInfo) -> None:
        """Count one forward pass and tell the hooks."""
        with self._lock:
            s = self._stats
            s["batches"] += 1
            s["rendered"] += info.faces
            s["last_batch_size"] = info.faces
            s["max_batch_size"] = max(s["max_batch_size"], info.faces)
            s["busy_seconds"] += info.seconds
            s["batch_sizes"][info.faces] = s["batch_sizes"].get(info.faces, 0) + 1
        for hook in self.hooks:
            try:
                hook(info)
            except Exception:  # a broken metrics hook must not break rendering
                log.exception("batch hook failed")

    def snapshot(self) -> dict[str, Any]:
        """A copy of the counters and the batch-size histogram."""
        with self._lock:
            snap = dict(self._stats)
            snap["batch_sizes"] = dict(self._stats["batch_sizes"])
        return snap
