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
conservative prior (:data:`PRIOR_SECONDS_PER_PASS`, the slow end of what a CPU replica
takes); :meth:`Batcher.warm_up` (called by the app when it loads the models) measures the
pipeline before the first request so that a cold replica admits what it can serve. Each
measured job then moves the estimate: quickly up (a slower machine than thought must not
over-admit), slowly down.

**Leaving.** A job whose future is cancelled before it starts is skipped and its cost leaves
the backlog; a running call job given a ``stop`` check (see :meth:`Batcher.submit_call`)
stops between its steps once :meth:`JobFuture.abandon` is called. :mod:`api.jobs` does that
when the client disconnects or the job waited longer than the service's maximum queue wait.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from tlgan.pipeline import Pipeline, Stopped

log = logging.getLogger("tlgan.api.batching")

T = TypeVar("T")
RenderResult = tuple[np.ndarray, np.ndarray | None]
#: prior estimate of one face-pass (render + label of one 64 px face) until a lane has
#: measured its own: the slow end of the 17-65 ms measured on a loaded 2-core CPU, so that a
#: cold replica under-admits rather than over-admits (see :meth:`Batcher.warm_up`)
PRIOR_SECONDS_PER_PASS = 0.05
#: weight of a new measurement in a lane's estimate when it is slower / faster than thought
LEARN_UP = 0.5
LEARN_DOWN = 0.2
INTERACTIVE = "interactive"
BULK = "bulk"


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
class _RenderJob:
    z: np.ndarray
    with_features: bool
    future: JobFuture
    cost: float
    pipeline: Pipeline  # the models it runs on: the request's (a reload swaps only later ones)
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class _CallJob:
    fn: Callable[..., Any]
    wants_stop: bool
    future: JobFuture
    cost: float
    pipeline: Pipeline  # the models it runs on: the request's (a reload swaps only later ones)
    queued_at: float = field(default_factory=time.perf_counter)


_Job = _RenderJob | _CallJob


class _Lane:
    """One queue with its own worker thread and its own cost estimate."""

    def __init__(self, name: str, owner: Batcher) -> None:
        self.name = name
        self.owner = owner
        self.jobs: collections.deque[_Job] = collections.deque()
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.seconds_per_pass = PRIOR_SECONDS_PER_PASS
        self.last_submit = 0.0
        self.gap = float("inf")  # moving average of the time between submissions (s)
        self.running_cost = 0.0  # estimated face-passes of the job(s) being computed
        self.running_since = 0.0  # when they started (perf_counter)
        self.rendered = 0  # faces rendered by this lane's batched forward passes

    # -- queue (callers hold self.cond) --------------------------------------------------
    def _drop_departed(self) -> None:
        """Cancel queued jobs whose client is gone (a syscall each: only when the lane would
        otherwise refuse a job)."""
        for j in self.jobs:
            if j.future.connected is not None and not j.future.connected():
                j.future.cancel()
        self._prune()

    def _prune(self) -> None:
        """Drop cancelled jobs so they neither count nor wait."""
        if any(j.future.cancelled() for j in self.jobs):
            self.jobs = collections.deque(j for j in self.jobs if not j.future.cancelled())

    def running_left(self) -> float:
        """Estimated model seconds left of the running job(s): the estimate less the time
        run so far or, once they have run longer than estimated, as long again."""
        if self.running_cost <= 0 and not self.running_since:
            return 0.0
        estimate = self.running_cost * self.seconds_per_pass
        elapsed = time.perf_counter() - self.running_since if self.running_since else 0.0
        return estimate - elapsed if elapsed < estimate else elapsed

    def backlog_seconds(self) -> float:
        """Estimated model seconds of the queued jobs and the rest of the running one."""
        queued = sum(j.cost for j in self.jobs if not j.future.cancelled())
        return queued * self.seconds_per_pass + self.running_left()

    def put(self, job: _Job) -> None:
        o = self.owner
        with self.cond:
            if self.stopping or not o._accepting:
                raise BatcherStopped("the service is shutting down")
            self._prune()
            cost = job.cost * self.seconds_per_pass
            if (len(self.jobs) >= o.queue_size
                    or self.backlog_seconds() + cost > o.max_queue_seconds):
                self._drop_departed()  # their places are free
            backlog = self.backlog_seconds()
            cap = o.max_queue_seconds
            if len(self.jobs) >= o.queue_size:
                o._count("rejected")
                raise QueueFull(len(self.jobs), backlog, cap=cap)
            idle = not self.jobs and not self.running_since
            if not idle and backlog + cost > o.max_queue_seconds:
                o._count("rejected")
                running = (f", a job running for {time.perf_counter() - self.running_since:.0f}"
                           " s included" if self.running_since else "")
                raise QueueFull(len(self.jobs), backlog,
                                f"about {backlog:.0f} s of work waiting for the {self.name} "
                                f"lane{running}; this request needs about {cost:.0f} s of "
                                f"the {o.max_queue_seconds:g} s it may hold", cap=cap)
            self.jobs.append(job)
            now = time.perf_counter()
            if self.last_submit:
                gap = now - self.last_submit
                self.gap = gap if self.gap == float("inf") else 0.7 * self.gap + 0.3 * gap
            self.last_submit = now
            self.cond.notify()

    def take(self) -> _Job | None:
        """The next live job, waiting for one; None once the lane stops and is empty (jobs
        accepted before the stop are still handed out: a graceful stop finishes them)."""
        with self.cond:
            while True:
                self._prune()
                if self.jobs:
                    return self.jobs.popleft()
                if self.stopping:
                    return None
                self.cond.wait()

    # -- worker --------------------------------------------------------------------------
    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name=f"tlgan-{self.name}",
                                           daemon=True)
            self.thread.start()

    def stop(self, timeout: float) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join(timeout)
            self.thread = None

    def _run(self) -> None:
        while True:
            job = self.take()
            if job is None:
                return  # stopping, and everything accepted before was done
            if not self._begin(job):
                continue
            if isinstance(job, _CallJob):
                self._run_call(job)
            else:
                self._run_batch(self._collect(job))

    def _begin(self, job: _Job) -> bool:
        connected = job.future.connected
        if connected is not None and not connected():
            job.future.cancel()  # the client left: never start it
        if not job.future.set_running_or_notify_cancel():
            return False
        job.future.started_at = time.perf_counter()
        return True

    def _collect(self, first: _RenderJob) -> list[_RenderJob]:
        """Render jobs to join ``first`` in one forward pass."""
        o = self.owner
        batch = [first]
        faces = first.z.shape[0]
        with self.cond:
            wait = o.window > 0 and (not o.adaptive or self.gap < o.window)
        deadline = first.queued_at + o.window if wait else 0.0
        while faces < o.max_batch:
            with self.cond:
                self._prune()
                if not self.jobs:
                    left = deadline - time.perf_counter()
                    if not wait or self.stopping or left <= 0:
                        break
                    self.cond.wait(left)
                    continue
                nxt = self.jobs[0]
                if isinstance(nxt, _CallJob) or faces + nxt.z.shape[0] > o.max_batch:
                    break  # runs next, in order
                self.jobs.popleft()
            if self._begin(nxt):
                batch.append(nxt)
                faces += nxt.z.shape[0]
        return batch

    def _learn(self, cost: float, seconds: float) -> None:
        if cost > 0 and seconds > 0:
            rate = seconds / cost
            with self.cond:
                w = LEARN_UP if rate > self.seconds_per_pass else LEARN_DOWN
                self.seconds_per_pass = (1 - w) * self.seconds_per_pass + w * rate

    def _run_batch(self, batch: list[_RenderJob]) -> None:
        o = self.owner
        with self.cond:
            self.running_cost = float(sum(j.cost for j in batch))
            self.running_since = time.perf_counter()
        try:
            groups: dict[tuple[bool, int], list[_RenderJob]] = {}
            for j in batch:  # one forward pass per (labels or not, models)
                groups.setdefault((j.with_features, id(j.pipeline)), []).append(j)
            for (flag, _), group in sorted(groups.items(), key=lambda kv: kv[0][0]):
                z = np.concatenate([j.z for j in group]) if len(group) > 1 else group[0].z
                t0 = time.perf_counter()
                try:
                    images, probs = group[0].pipeline.render_and_label(z, with_features=flag)
                except BaseException as exc:  # handed to the requests, never kills the worker
                    for j in group:
                        j.future.set_exception(exc)
                    continue
                seconds = time.perf_counter() - t0
                self._learn(float(sum(j.cost for j in group)), seconds)
                with self.cond:
                    self.rendered += int(z.shape[0])
                # Bookkeeping and hooks first, results last: a resolved future wakes the
                # event loop, which would otherwise wait for this thread's Python (the GIL)
                # before it can answer; and the batch is counted before its requests end.
                o._record(BatchInfo(int(z.shape[0]), len(group), flag, seconds,
                                    o.queue_depth))
                start = 0
                for j in group:
                    n = j.z.shape[0]
                    j.future.set_result((images[start:start + n],
                                         None if probs is None else probs[start:start + n]))
                    start += n
        finally:
            with self.cond:
                self.running_cost = 0.0
                self.running_since = 0.0

    def _run_call(self, job: _CallJob) -> None:
        o = self.owner
        t0 = time.perf_counter()
        with self.cond:
            self.running_cost = job.cost
            self.running_since = t0
        try:
            if job.wants_stop:
                result = job.fn(job.pipeline, job.future.stopped)
            else:
                result = job.fn(job.pipeline)
        except JobStopped as exc:
            o._count("stopped")
            job.future.set_exception(exc)
        except BaseException as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)
            self._learn(job.cost, time.perf_counter() - t0)
        finally:
            with self.cond:
                self.running_cost = 0.0
                self.running_since = 0.0
        o._count("calls")
        o._count("busy_seconds", time.perf_counter() - t0)


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
        self._lock = threading.Lock()
        self._accepting = True
        self._started = False
        self.lanes = {INTERACTIVE: _Lane(INTERACTIVE, self), BULK: _Lane(BULK, self)}
        self._stats: dict[str, Any] = {
            "jobs": 0, "faces": 0, "rendered": 0, "done": 0, "batches": 0, "calls": 0,
            "rejected": 0,
            "cancelled": 0, "stopped": 0, "expired": 0,
            "last_batch_size": 0, "max_batch_size": 0, "busy_seconds": 0.0,
            "batch_sizes": {},
        }

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
        self._put(_RenderJob(z, bool(with_features), fut, cost, pipeline or self.pipeline),
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
        self._put(_CallJob(fn, stoppable, fut, float(cost), pipeline or self.pipeline), 0,
                  memory)
        return fut

    def _put(self, job: _Job, faces: int, memory: float = 0.0) -> None:
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
        with self._lock:
            self._stats["jobs"] += 1
            self._stats["faces"] += faces

    def _reserve(self, memory: float) -> None:
        """Hold ``memory`` bytes for a job, or QueueFull when the held memory plus it would
        exceed ``max_memory_bytes`` (a job is admitted when none is held)."""
        with self._lock:
            held = self.memory_held
            refused = memory > 0 and held > 0 and held + memory > self.max_memory_bytes
            if refused:
                self._stats["rejected"] += 1
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
            self._count("cancelled")
        elif future.exception() is None:
            self._count("done")

    def expired(self) -> None:
        """Count a job given up because it waited longer than the maximum queue wait."""
        self._count("expired")

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
        with self._lock:
            snap = dict(self._stats)
            snap["batch_sizes"] = dict(self._stats["batch_sizes"])
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

    def _count(self, name: str, amount: float = 1) -> None:
        with self._lock:
            self._stats[name] += amount

    def _record(self, info: BatchInfo) -> None:
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

    def _fail_pending(self) -> None:
        """Jobs still queued after stop (never started, or the join timed out)."""
        for lane in self.lanes.values():
            with lane.cond:
                jobs, lane.jobs = list(lane.jobs), collections.deque()
            for job in jobs:
                if job.future.set_running_or_notify_cancel():
                    job.future.set_exception(BatcherStopped("the service is shutting down"))
