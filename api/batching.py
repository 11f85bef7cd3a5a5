"""Work-aware scheduling of model work: two lanes, micro-batching, bounded backlog.

All model work runs on worker threads owned by a :class:`Batcher`; requests submit *jobs*
and await their futures (nothing here touches the event loop).

**Jobs and their cost.** Every job carries a cost in *face-passes* (one face rendered and
labelled): a render job of ``n`` faces costs ``n``; a call job (any function of the
pipeline, e.g. feature-conditioned generation or closed-loop locks, which render several
times) is given its cost by the caller (faces x the most passes it may take). Each lane
keeps a moving average of the seconds one face-pass takes (measured on its own jobs), so a
job's cost converts to an estimate of model seconds.

**Two lanes.** Jobs costing at most ``interactive_cost`` face-passes (a single-face edit,
even with closed-loop locks; a few faces) go to the *interactive* lane, heavier ones to the
*bulk* lane. Each lane has its own queue and its own worker thread, so a heavy job never
makes an interactive one wait behind it (they share the machine's cores, not a queue).

**Micro-batching.** A worker takes the first render job of its lane, then keeps taking
queued render jobs until ``max_batch`` faces are collected or the window has passed, and
renders them in one forward pass (once per ``with_features`` value present). The window is
adaptive: the worker waits for more jobs only while requests arrive faster than the window
(a moving average of the gaps between submissions), so a lone client never pays it. Results
do not depend on batching (each face is computed independently; see the determinism tests).

**Admission.** A lane refuses a job (:class:`QueueFull`, HTTP 503) when ``queue_size`` jobs
already wait in it, or when its backlog plus the job would exceed ``max_queue_seconds``. The
backlog is the estimated model seconds of the jobs waiting *and of the rest of the running
one*: its estimate less the time it has run, or, once it has run longer than estimated, as
long again as it has run so far (a job that overran its estimate is not nearly done).
``retry_after`` is the backlog rounded up, at least 1 s and at most ``max_queue_seconds``
(the cap: a client is never told to stay away longer than the queue may hold work). A job
alone in an idle lane is always admitted.

**Memory.** A job may also carry its request's memory estimate in bytes (:mod:`api.memory`).
The batcher holds the sum of the estimates of the jobs admitted and not yet finished (queued,
running, or stopping); a job that would take that sum above ``max_memory_bytes`` is refused
with :class:`QueueFull` (Retry-After as above), unless no memory is held (a job alone is
always admitted). A job's estimate is released when its future is done or cancelled.

**The estimate of a face-pass.** Until a lane has measured its own jobs it uses a
conservative prior (:data:`api.lanes.PRIOR_SECONDS_PER_PASS`, the slow end of what a CPU
replica takes); :meth:`Batcher.warm_up` (called by the app when it loads the models) measures the
pipeline before the first request so that a cold replica admits what it can serve. Each
measured job then moves the estimate: quickly up (a slower machine than thought must not
over-admit), slowly down.

**Leaving.** A job whose future is cancelled before it starts is skipped and its cost leaves
the backlog; a running call job given a ``stop`` check (see :meth:`Batcher.submit_call`)
stops between its steps once :meth:`JobFuture.abandon` is called. :mod:`api.jobs` does that
when the client disconnects or the job waited longer than the service's maximum queue wait.

**Where it lives.** :class:`Batcher` (here) owns the lanes, admits by memory, counts and
reports; each lane (:mod:`api.lanes`) queues, admits by backlog, and runs its worker; the
jobs, their futures, the refusals and the counters are in :mod:`api.batch_jobs`.
"""


from __future__ import annotations

import collections
import concurrent.futures
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from api.batch_jobs import (
    BatchCounters,
    BatcherStopped,
    BatchInfo,
    CallJob,
    Job,
    JobFuture,
    JobStopped,
    QueueFull,
    RenderJob,
    RenderResult,
    retry_after,
)
from api.lanes import Lane
from tlgan.pipeline import Pipeline

__all__ = [
    "BULK",
    "INTERACTIVE",
    "BatchInfo",
    "Batcher",
    "BatcherStopped",
    "JobFuture",
    "JobStopped",
    "QueueFull",
    "RenderResult",
    "retry_after",
]

T = TypeVar("T")
INTERACTIVE = "interactive"
BULK = "bulk"


class Batcher:
    """Runs model jobs from many requests on two lanes (interactive and bulk), batching
    render jobs into shared forward passes; see the module docstring.

    Args:
        pipeline: the models.
        window_ms: the longest time a render job waits for others to join its batch.
        max_batch: the most faces in one forward pass (a single larger job runs alone).
        queue_size: the most jobs waiting in one lane; beyond it :meth:`submit` raises
            QueueFull.
        max_queue_seconds: the most estimated model seconds of work waiting in one lane;
            beyond it QueueFull (a job alone in an idle lane is always admitted).
        interactive_cost: jobs costing at most this many face-passes use the interactive
            lane, heavier ones the bulk lane.
        max_memory_bytes: the most memory estimated for the admitted, unfinished jobs
            together; beyond it QueueFull (a job is admitted when none is held).
        on_batch: optional hook called (on a worker thread) after every forward pass.
        adaptive: wait for the window only while jobs arrive faster than it; False always
            waits the full window when the queue runs dry.
    """

    def __init__(self, pipeline: Pipeline, *, window_ms: float = 2.0, max_batch: int = 64,
                 queue_size: int = 256, max_queue_seconds: float = 30.0,
                 interactive_cost: float = 8.0, max_memory_bytes: float = math.inf,
                 on_batch: Callable[[BatchInfo], None] | None = None,
                 adaptive: bool = True) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: must be >= 1, got {max_batch}")
        if queue_size < 1:
            raise ValueError(f"queue_size: must be >= 1, got {queue_size}")
        if window_ms < 0:
            raise ValueError(f"window_ms: must be >= 0, got {window_ms}")
        if max_queue_seconds <= 0:
            raise ValueError(f"max_queue_seconds: must be > 0, got {max_queue_seconds}")
        if not max_memory_bytes > 0:
            raise ValueError(f"max_memory_bytes: must be > 0, got {max_memory_bytes}")
        self.max_memory_bytes = float(max_memory_bytes)
        self.memory_held = 0.0  # bytes estimated for the admitted, unfinished jobs
        self.pipeline = pipeline
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.queue_size = queue_size
        self.max_queue_seconds = float(max_queue_seconds)
        self.interactive_cost = float(interactive_cost)
        self.adaptive = adaptive
        self.hooks: list[Callable[[BatchInfo], None]] = [on_batch] if on_batch else []
        self.counters = BatchCounters(self.hooks)
        self._lock = threading.Lock()
        self._accepting = True
        self._started = False
        self.lanes = {INTERACTIVE: Lane(INTERACTIVE, self), BULK: Lane(BULK, self)}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Batcher:
        """Start the worker threads (idempotent); returns self."""
        self._started = True
        for lane in self.lanes.values():
            lane.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting jobs, finish the queued ones, and join the worker threads."""
        self._accepting = False
        for lane in self.lanes.values():
            lane.stop(timeout)
        self._fail_pending()

    def warm_up(self, faces: int = 8, runs: int = 3) -> dict[str, float]:
        """Measure the pipeline before serving (the caller's thread, before requests come):
        the seconds per face of a batch of ``faces``, the median of ``runs`` after one
        untimed pass (first passes pay one-off costs), becomes both lanes' estimate (queued
        jobs are rendered in batches; a lane whose own jobs are slower learns it from its
        first ones). Not counted in the stats or hooks. Returns ``{lane: seconds per
        face-pass}``."""
        if faces < 1 or runs < 1:
            raise ValueError(f"faces, runs: must be >= 1, got {faces}, {runs}")
        z = np.ascontiguousarray(self.pipeline.seeds_to_latents(list(range(faces))),
                                 dtype=np.float32)
        labels = getattr(self.pipeline, "extractor", None) is not None
        self.pipeline.render_and_label(z, with_features=labels)  # untimed
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.pipeline.render_and_label(z, with_features=labels)
            times.append((time.perf_counter() - t0) / faces)
        per_face = float(np.median(times))
        for lane in self.lanes.values():
            with lane.cond:
                lane.seconds_per_pass = per_face
        return {name: per_face for name in self.lanes}

    def retry_after(self, lane: str | None = None) -> int:
        """Retry-After for a request refused now: the backlog (one lane, or the larger),
        rounded up, within [1, max_queue_seconds]."""
        return retry_after(self.backlog_seconds(lane), self.max_queue_seconds)

    @property
    def running(self) -> bool:
        """Whether the worker threads are alive."""
        return any(lane.thread is not None and lane.thread.is_alive()
                   for lane in self.lanes.values())

    # -- submitting (any thread) -----------------------------------------------------------
    def lane_for(self, cost: float) -> str:
        """The lane a job of ``cost`` face-passes goes to."""
        return INTERACTIVE if cost <= self.interactive_cost else BULK

    def submit(self, z: np.ndarray, with_features: bool = True,
               connected: Callable[[], bool] | None = None,
               pipeline: Pipeline | None = None, memory: float = 0.0) -> JobFuture:
        """Queue latents ``(n, L)`` for rendering; the future yields (faces, probs | None).
        ``connected()`` (thread-safe), when given, is asked before the job starts: false
        cancels it. ``pipeline``: the models to run on (default: :attr:`pipeline` now).
        ``memory``: the request's memory estimate in bytes (see the module docstring)."""
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[0] < 1:
            raise ValueError(f"latent: expected shape (n, L) with n >= 1, got {z.shape}")
        fut = JobFuture(connected)
        cost = float(z.shape[0])
        self._put(RenderJob(z, bool(with_features), fut, cost, pipeline or self.pipeline),
                  z.shape[0], memory)
        return fut

    def submit_call(self, fn: Callable[..., T], cost: float = 1.0, stoppable: bool = False,
                    connected: Callable[[], bool] | None = None,
                    pipeline: Pipeline | None = None, memory: float = 0.0) -> JobFuture:
        """Queue ``fn(pipeline)`` to run alone on a worker thread; ``cost`` is the most
        face-passes it may take. With ``stoppable``, it is called as ``fn(pipeline, stop)``
        where ``stop()`` turns true once the job is abandoned: it should then raise
        :class:`JobStopped` between its steps; ``connected``, ``pipeline`` and ``memory`` as
        for :meth:`submit`."""
        if not cost >= 0:
            raise ValueError(f"cost: must be >= 0, got {cost}")
        fut = JobFuture(connected)
        self._put(CallJob(fn, stoppable, fut, float(cost), pipeline or self.pipeline), 0,
                  memory)
        return fut

    def _put(self, job: Job, faces: int, memory: float = 0.0) -> None:
        if not self._accepting:
            raise BatcherStopped("the service is shutting down")
        if not memory >= 0:
            raise ValueError(f"memory: must be >= 0, got {memory}")
        self._reserve(memory)
        try:
            self.lanes[self.lane_for(job.cost)].put(job)
        except BaseException:
            self._release(memory)
            raise
        if memory:
            job.future.add_done_callback(lambda _f: self._release(memory))
        job.future.add_done_callback(self._count_end)
        self.counters.add({"jobs": 1, "faces": faces})

    def _reserve(self, memory: float) -> None:
        """Hold ``memory`` bytes for a job, or QueueFull when the held memory plus it would
        exceed ``max_memory_bytes`` (a job is admitted when none is held)."""
        with self._lock:
            held = self.memory_held
            refused = memory > 0 and held > 0 and held + memory > self.max_memory_bytes
            if refused:
                self.counters.count("rejected")
            else:
                self.memory_held = held + memory
        if refused:  # outside the lock: the lanes' locks are taken before it elsewhere
            mib = 2**20
            raise QueueFull(self.queue_depth, self.backlog_seconds(),
                            f"about {held / mib:.0f} MiB of memory held by the jobs admitted; "
                            f"this request needs about {memory / mib:.0f} MiB of the "
                            f"{self.max_memory_bytes / mib:.0f} MiB they may hold",
                            cap=self.max_queue_seconds)

    def _release(self, memory: float) -> None:
        with self._lock:
            self.memory_held = max(0.0, self.memory_held - memory)

    def _count_end(self, future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            self.counters.count("cancelled")
        elif future.exception() is None:
            self.counters.count("done")

    def expired(self) -> None:
        """Count a job given up because it waited longer than the maximum queue wait."""
        self.counters.count("expired")

    # -- stats -----------------------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        """Jobs waiting in both lanes (not counting the ones being computed)."""
        total = 0
        for lane in self.lanes.values():
            with lane.cond:
                total += sum(1 for j in lane.jobs if not j.future.cancelled())
        return total

    def backlog_seconds(self, lane: str | None = None) -> float:
        """Estimated model seconds waiting (one lane, or the larger of the two)."""
        names = [lane] if lane is not None else list(self.lanes)
        out = 0.0
        for name in names:
            ln = self.lanes[name]
            with ln.cond:
                out = max(out, ln.backlog_seconds())
        return out

    def stats(self) -> dict[str, Any]:
        """A snapshot: queue depth, backlog, counters and the batch-size histogram."""
        snap = self.counters.snapshot()
        lanes = {}
        for name, ln in self.lanes.items():
            with ln.cond:
                lanes[name] = {
                    "queue_depth": sum(1 for j in ln.jobs if not j.future.cancelled()),
                    "backlog_seconds": round(ln.backlog_seconds(), 3),
                    "seconds_per_pass": ln.seconds_per_pass,
                    "rendered": ln.rendered,
                }
        snap["lanes"] = lanes
        snap["queue_depth"] = sum(v["queue_depth"] for v in lanes.values())
        snap["backlog_seconds"] = max(v["backlog_seconds"] for v in lanes.values())
        snap["queue_size"] = self.queue_size
        snap["max_queue_seconds"] = self.max_queue_seconds
        snap["max_batch"] = self.max_batch
        snap["window_ms"] = self.window * 1000.0
        return snap

    @property
    def accepting(self) -> bool:
        """Whether jobs are accepted (False once :meth:`stop` was called)."""
        return self._accepting

    def _fail_pending(self) -> None:
        """Jobs still queued after stop (never started, or the join timed out)."""
        for lane in self.lanes.values():
            with lane.cond:
                jobs, lane.jobs = list(lane.jobs), collections.deque()
            for job in jobs:
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(BatcherStopped("the service is shutting down"))
