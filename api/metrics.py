"""Prometheus metrics of one app (``GET /metrics``, text exposition format or OpenMetrics).

Each app gets its own :class:`~prometheus_client.CollectorRegistry` (never the global one:
tests build many apps in one process). What is measured:

========================================  =========  ==========================================
metric                                    type       labels / meaning
========================================  =========  ==========================================
``tlgan_request_duration_seconds``        histogram  ``method``, ``route`` (template, e.g.
                                                     ``/edit``), ``status`` (``2xx`` ...)
``tlgan_requests_in_flight``              gauge      requests being served now
``tlgan_errors_total``                    counter    ``route``, ``status`` (exact code, >= 400)
``tlgan_batch_size``                      histogram  faces per forward pass
``tlgan_batch_duration_seconds``          histogram  seconds per forward pass (render + label)
``tlgan_faces_rendered_total``            counter    faces rendered by batched forward passes
``tlgan_queue_depth``                     gauge      render jobs waiting for the model
``tlgan_queue_capacity``                  gauge      most jobs that may wait (beyond: 503)
``tlgan_queue_rejected_total``            counter    jobs refused: a lane full (jobs or seconds)
``tlgan_queue_backlog_seconds``           gauge      ``lane``: estimated model seconds waiting
``tlgan_jobs_cancelled_total``            counter    jobs never started: their client left
``tlgan_jobs_stopped_total``              counter    running jobs stopped: their client left
``tlgan_jobs_expired_total``              counter    jobs given up after the maximum queue wait
``tlgan_model_calls_total``               counter    unbatched model jobs (conditioned generation)
``tlgan_ready``                           gauge      1 when ready, 0 while loading or draining
``tlgan_model_info``                      gauge (1)  ``generator``, ``generator_sha256``,
                                                     ``extractor``, ``bundle``, ``device``
========================================  =========  ==========================================

Request metrics come from :class:`api.middleware.CatchAllMiddleware`'s ``on_request`` hook,
batch metrics from the batcher's hooks (:class:`api.batching.BatchInfo`), and the rest is
read from the app's state at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from api.batching import BatchInfo
from api.middleware import RequestRecord
from api.state import AppState

#: Request latency buckets (seconds): sub-millisecond health checks to multi-second batches.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
#: Faces per forward pass (powers of two up to the largest allowed ``max_batch``).
BATCH_BUCKETS = tuple(float(2 ** i) for i in range(13))
BATCH_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                         2.5, 5.0)


def status_class(status: int) -> str:
    """``200`` -> ``"2xx"``."""
    return f"{status // 100}xx"


class _StateCollector(Collector):
    """Values read from the app's state (batcher, pipeline, readiness) at scrape time."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        state = self.state
        batcher = state.batcher
        snap = batcher.stats() if batcher is not None else {}
        yield GaugeMetricFamily("tlgan_queue_depth", "Render jobs waiting for the model.",
                                value=snap.get("queue_depth", 0))
        yield GaugeMetricFamily("tlgan_queue_capacity",
                                "Most jobs that may wait for the model (beyond it: 503).",
                                value=snap.get("queue_size", state.settings.queue_size))
        yield CounterMetricFamily("tlgan_queue_rejected",
                                  "Jobs refused (503) because the render queue was full.",
                                  value=snap.get("rejected", 0))
        yield CounterMetricFamily("tlgan_model_calls",
                                  "Unbatched model jobs (e.g. feature-conditioned generation).",
                                  value=snap.get("calls", 0))
        backlog = GaugeMetricFamily(
            "tlgan_queue_backlog_seconds",
            "Estimated model seconds of work waiting, per lane (admission bounds it).",
            labels=["lane"])
        for lane, figures in snap.get("lanes", {}).items():
            backlog.add_metric([lane], float(figures.get("backlog_seconds", 0.0)))
        yield backlog
        yield CounterMetricFamily(
            "tlgan_jobs_cancelled",
            "Jobs never started because their client left (or waited too long).",
            value=snap.get("cancelled", 0))
        yield CounterMetricFamily(
            "tlgan_jobs_stopped",
            "Running jobs stopped between steps because their client left.",
            value=snap.get("stopped", 0))
        yield CounterMetricFamily(
            "tlgan_jobs_expired",
            "Jobs given up after the maximum queue wait (503).",
            value=snap.get("expired", 0))
        ready = state.ready and not state.draining
        yield GaugeMetricFamily("tlgan_ready",
                                "1 when the service is ready, 0 while loading or draining.",
                                value=1.0 if ready else 0.0)
        pipeline = state.pipeline
        if pipeline is not None and state.ready:
            info = GaugeMetricFamily(
                "tlgan_model_info", "The loaded models (must match across replicas).",
                labels=["generator", "generator_sha256", "extractor", "bundle", "device"])
            gen = pipeline.generator
            info.add_metric([str(gen.name), str(gen.sha256),
                             str(getattr(pipeline.extractor, "name", None) or "none"),
                             str(pipeline.bundle_id or "none"), str(gen.device)], 1.0)
            yield info


class Metrics:
    """The metrics of one app; ``observe_request`` / ``observe_batch`` are the hooks."""

    def __init__(self, state: AppState) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_duration = Histogram(
            "tlgan_request_duration_seconds", "Request latency by route template.",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("tlgan_requests_in_flight", "Requests being served now.",
                               registry=r)
        self.errors = Counter("tlgan_errors", "Responses with status >= 400.",
                              ["route", "status"], registry=r)
        self.batch_size = Histogram("tlgan_batch_size", "Faces per forward pass.",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.batch_duration = Histogram(
            "tlgan_batch_duration_seconds", "Seconds per forward pass (render + label).",
            buckets=BATCH_SECONDS_BUCKETS, registry=r)
        self.faces = Counter("tlgan_faces_rendered", "Faces rendered by batched forward passes.",
                             registry=r)
        r.register(_StateCollector(state))

    # -- hooks -----------------------------------------------------------------------------
    def request_started(self) -> None:
        """Count a request in flight (paired with :meth:`observe_request`)."""
        self.in_flight.inc()

    def observe_request(self, record: RequestRecord) -> None:
        """Middleware hook: one finished request."""
        self.in_flight.dec()
        self.request_duration.labels(record.method, record.route,
                                     status_class(record.status)).observe(record.duration_s)
        if record.status >= 400:
            self.errors.labels(record.route, str(record.status)).inc()

    def observe_batch(self, info: BatchInfo) -> None:
        """Batcher hook (worker thread): one forward pass."""
        self.batch_size.observe(info.faces)
        self.batch_duration.observe(info.seconds)
        self.faces.inc(info.faces)

    # -- exposition ------------------------------------------------------------------------
    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)

    async def endpoint(self, request: Request) -> Response:
        """``GET /metrics``: the Prometheus text format, or OpenMetrics when the scraper's
        ``Accept`` asks for it."""
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(self.registry), headers={"Content-Type": content_type})
