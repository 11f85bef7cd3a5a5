"""One lane of the batcher: a queue with its own worker thread and its own estimate of a
face-pass; it admits or refuses jobs and runs them, batching render jobs (the scheduling as a
whole: :mod:`api.batching`).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Protocol

import numpy as np

from api.batch_jobs import (
    BatchCounters,
    BatcherStopped,
    BatchInfo,
    CallJob,
    Job,
    JobStopped,
    QueueFull,
    RenderJob,
)

#: prior estimate of one face-pass (render + label of one 64 px face) until a lane has
#: measured its own: the slow end of the 17-65 ms measured on a loaded 2-core CPU, so that a
#: cold replica under-admits rather than over-admits (see :meth:`api.batching.Batcher.warm_up`)
PRIOR_SECONDS_PER_PASS = 0.05
#: weight of a new measurement in a lane's estimate when it is slower / faster than thought
LEARN_UP = 0.5
LEARN_DOWN = 0.2


class LaneOwner(Protocol):
    """What a lane reads from the batcher that owns it: its limits and its counters."""

    queue_size: int
    max_queue_seconds: float
    max_batch: int
    window: float
    adaptive: bool
    counters: BatchCounters

    @property
    def accepting(self) -> bool: ...

    @property
    def queue_depth(self) -> int: ...


class Lane:
    """One queue with its own worker thread and its own cost estimate."""

    def __init__(self, name: str, owner: LaneOwner) -> None:
        self.name = name
        self.owner = owner
        self.jobs: collections.deque[Job] = collections.deque()
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

    def put(self, job: Job) -> None:
        o = self.owner
        with self.cond:
            if self.stopping or not o.accepting:
                raise BatcherStopped("the service is shutting down")
            self._prune()
            cost = job.cost * self.seconds_per_pass
            if (len(self.jobs) >= o.queue_size
                    or self.backlog_seconds() + cost > o.max_queue_seconds):
                self._drop_departed()  # their places are free
            backlog = self.backlog_seconds()
            cap = o.max_queue_seconds
            if len(self.jobs) >= o.queue_size:
                o.counters.count("rejected")
                raise QueueFull(len(self.jobs), backlog, cap=cap)
            idle = not self.jobs and not self.running_since
            if not idle and backlog + cost > o.max_queue_seconds:
                o.counters.count("rejected")
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

    def take(self) -> Job | None:
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
            if isinstance(job, CallJob):
                self._run_call(job)
            else:
                self._run_batch(self._collect(job))

    def _begin(self, job: Job) -> bool:
        connected = job.future.connected
        if connected is not None and not connected():
            job.future.cancel()  # the client left: never start it
        if not job.future.set_running_or_notify_cancel():
            return False
        job.future.started_at = time.perf_counter()
        return True

    def _collect(self, first: RenderJob) -> list[RenderJob]:
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
                if isinstance(nxt, CallJob) or faces + nxt.z.shape[0] > o.max_batch:
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

    def _run_batch(self, batch: list[RenderJob]) -> None:
        o = self.owner
        with self.cond:
            self.running_cost = float(sum(j.cost for j in batch))
            self.running_since = time.perf_counter()
        try:
            groups: dict[tuple[bool, int], list[RenderJob]] = {}
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
                o.counters.record(BatchInfo(int(z.shape[0]), len(group), flag, seconds,
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

    def _run_call(self, job: CallJob) -> None:
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
            o.counters.count("stopped")
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
        o.counters.count("calls")
        o.counters.count("busy_seconds", time.perf_counter() - t0)
