"""Pure ASGI middleware: request body limit (413), loop slots and the outer request middleware.

:class:`CatchAllMiddleware` is the outermost layer of the app (inside CORS): it gives every
request an id (``X-Request-ID``), turns unhandled exceptions into a generic 500, times the
request, writes one structured access-log record and hands a :class:`RequestRecord` to the
metrics hooks.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tlgan.api")
#: One record per request (see :class:`AccessLogFormatter` for its JSON line).
access_log = logging.getLogger("tlgan.access")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: Route label of requests that match no route (404s): raw paths would be unbounded.
UNMATCHED = "<unmatched>"
#: paths that are not work: answered while draining, not counted in flight
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
_SHUTTING_DOWN = {"detail": "unavailable: the service is shutting down; retry (another "
                  "replica)", "errors": None}


class WorkCounter:
    """Requests in flight, probes excepted (the drain waits for it to reach 0)."""

    def __init__(self) -> None:
        self.count = 0


async def _send_json(send: Send, status: int, body: Mapping[str, object],
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body).encode()
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()), *(headers or [])],
    })
    await send({"type": "http.response.body", "body": data})


class BodyLimitMiddleware:
    """Reject request bodies over ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before any byte is read; a body
    without one (chunked) is read up to the limit and refused as soon as it goes over. The
    accepted body is buffered and replayed to the app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int,
                 per_path: Mapping[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: {path: (limit, field named in the 413)}: routes that take larger bodies (uploads)
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, field = self.per_path.get(str(scope.get("path", "")), (self.max_bytes, "body"))
        too_big = {"detail": f"{field}: request body exceeds the limit of {limit} bytes",
                   "errors": None}
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, {"detail": "Content-Length: not an integer",
                                                 "errors": None})
                    return
        if declared is not None and declared > limit:
            await _send_json(send, 413, too_big, [(b"connection", b"close")])
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                await self.app(scope, _replay([message], receive), send)
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _send_json(send, 413, too_big, [(b"connection", b"close")])
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks),
                                        "more_body": False}], receive), send)


class LoopTurns:
    """Admit at most ``per_turn`` requests to compute on the event loop per turn of it.

    The event loop runs, in each turn, every callback that was ready when the turn began,
    then polls its sockets. A request step that validates a body, prepares a job or encodes
    an answer is CPU work; when hundreds are ready at once (600 concurrent ``/edit``, or the
    64 requests of one finished batch) one turn runs all of them and every socket, the
    ``/healthz`` probe's included, waits: 4.9 s was measured. :meth:`enter` lets a request
    go on at once while fewer than ``per_turn`` have gone on in this turn, else queues it
    (FIFO) for a later turn, so a turn runs at most ``per_turn`` such steps and the loop
    polls its sockets in between. The loop runs one step at a time anyway: throughput is
    unchanged, only the order changes."""

    def __init__(self, per_turn: int) -> None:
        if per_turn < 1:
            raise ValueError(f"per_turn: must be >= 1, got {per_turn}")
        self.per_turn = per_turn
        self.admitted = 0  # in the current turn
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._tick: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def enter(self) -> None:
        """Return when this request may compute on the loop (this turn or a later one)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new serving loop (tests run one app on several)
            self._loop, self._tick, self.admitted = loop, None, 0
            self.waiting = collections.deque()
        if self.admitted < self.per_turn and not self.waiting:
            self.admitted += 1
            self._schedule(loop)
            return
        future: asyncio.Future[None] = loop.create_future()
        self.waiting.append(future)
        self._schedule(loop)
        await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._tick is None:
            self._tick = loop.call_soon(self._next_turn, loop)

    def _next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """Runs once per turn while requests go on: a new turn's allowance."""
        self._tick = None
        self.admitted = 0
        while self.waiting and self.admitted < self.per_turn:
            future = self.waiting.popleft()
            if not future.done():  # a cancelled request leaves its place
                future.set_result(None)
                self.admitted += 1
        if self.waiting or self.admitted:
            self._schedule(loop)


class LoopTurnMiddleware:
    """Requests (probes excepted) take their turn on the event loop (:class:`LoopTurns`)
    once their body has arrived (the body limit, outside, buffers it: a slow client never
    holds a place); :class:`api.jobs.RequestJobs` takes a new turn whenever a request comes
    back from waiting for the model or a thread. ``/healthz``, ``/readyz`` and ``/metrics``
    never queue, so they answer within a turn or two under any load.

    The app's :class:`LoopTurns` is ``scope["state"]["loop_turns"]``
    (``request.state.loop_turns``)."""

    def __init__(self, app: ASGIApp, per_turn: int) -> None:
        self.app = app
        self.turns = LoopTurns(per_turn)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http" or scope.get("path") in PROBES:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if isinstance(state, dict):
            state["loop_turns"] = self.turns
        await self.turns.enter()
        await self.app(scope, receive, send)


class _Replay:
    """A receive callable that hands out ``messages`` first, then defers to ``inner`` (kept
    as an attribute so :func:`api.jobs.connection_check` can find the server's own)."""

    def __init__(self, messages: list[Message], inner: Receive) -> None:
        self.pending = list(messages)
        self.inner = inner

    async def __call__(self) -> Message:
        if self.pending:
            return self.pending.pop(0)
        return await self.inner()


def _replay(messages: list[Message], receive: Receive) -> Receive:
    return _Replay(messages, receive)


def request_id_from(headers: Sequence[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` if valid (1-128 chars of ``[A-Za-z0-9._-]``), else a
    new uuid4 hex."""
    for name, value in headers:
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if _REQUEST_ID_RE.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


@dataclass
class RequestRecord:
    """What one request did (handed to ``on_request`` hooks and written to the access log)."""

    request_id: str
    method: str
    route: str
    path: str
    status: int
    duration_s: float
    client: str | None


class CatchAllMiddleware:
    """The outer request middleware: request id, catch-all 500, access log, metrics hooks.

    * Request id: the client's ``X-Request-ID`` when valid, else a generated one; echoed in
      every response's ``X-Request-ID`` header (error bodies keep their one shape) and stored
      in ``scope["state"]["request_id"]`` (``request.state.request_id``).
    * Any unhandled exception becomes a generic 500 JSON answer (no traceback leaks); it is
      logged with its traceback and ``on_error`` (a counter hook) is called, so tests can show
      that client input never gets here.
    * ``on_start`` hooks are called when a request arrives; after the response, a
      :class:`RequestRecord` (route = the matched route's template, never the raw path;
      status 499 if no response was sent) goes to the access log (logger ``tlgan.access``,
      when ``access_log``) and to every ``on_request`` hook (metrics).
    * While ``draining()`` is true (SIGTERM received), ``GET /readyz`` answers 503 so load
      balancers stop sending traffic, ``/healthz`` and ``/metrics`` are served, and every
      other new request gets 503 + ``Retry-After`` + ``Connection: close``; requests that
      were already in flight finish (``work`` counts them). One still running when the
      server gives up waiting (its task is cancelled) is answered JSON 503 +
      ``Retry-After`` and logged in one line.

    Args:
        route_of: maps a scope whose request matched no route (e.g. a 413 answered before
            routing) to a route template; default :data:`UNMATCHED`.
    """

    def __init__(self, app: ASGIApp, on_error: Callable[[BaseException], None] | None = None,
                 on_start: Sequence[Callable[[], None]] = (),
                 on_request: Sequence[Callable[[RequestRecord], None]] = (),
                 access_log: bool = False, route_of: Callable[[Scope], str] | None = None,
                 draining: Callable[[], bool] | None = None,
                 work: WorkCounter | None = None) -> None:
        self.app = app
        self.work = work
        self.on_error = on_error
        self.on_start = list(on_start)
        self.on_request = list(on_request)
        self.access_log = access_log
        self.route_of = route_of
        self.draining = draining

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = request_id_from(scope.get("headers", []))
        state = scope.get("state")
        if isinstance(state, dict):
            state["request_id"] = rid
        else:
            scope["state"] = {"request_id": rid}
        rid_header = (b"x-request-id", rid.encode("ascii"))
        for hook in self.on_start:
            hook()
        started = False
        status = 499  # no response sent (the client went away or the task was cancelled)

        async def tracking_send(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), rid_header]}
            await send(message)

        path = scope.get("path")
        draining = self.draining is not None and self.draining()
        counted = self.work is not None and path not in PROBES and not draining
        if counted:
            assert self.work is not None
            self.work.count += 1
        try:
            if draining and path == "/readyz":
                await _send_json(tracking_send, 503, {"status": "draining"},
                                 [(b"retry-after", b"1")])
            elif draining and path not in PROBES:
                await _send_json(tracking_send, 503, _SHUTTING_DOWN,
                                 [(b"retry-after", b"1"), (b"connection", b"close")])
            else:
                await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if started or self.draining is None or not self.draining():
                raise  # not a shutdown: recorded as 499
            log.warning("shutdown: %s %s still running after the graceful timeout; answered "
                        "503 (request id %s)", scope.get("method"), path, rid)
            await _send_json(tracking_send, 503, _SHUTTING_DOWN,
                             [(b"retry-after", b"1"), (b"connection", b"close")])
        except Exception as exc:
            log.exception("unhandled error on %s %s (request id %s)", scope.get("method"),
                          scope.get("path"), rid)
            if self.on_error is not None:
                self.on_error(exc)
            status = 500
            if started:
                raise
            await _send_json(tracking_send, 500, {"detail": "internal server error",
                                                  "errors": None})
        finally:
            if counted:
                assert self.work is not None
                self.work.count -= 1
            self._record(scope, rid, status, time.perf_counter() - t0)

    def _record(self, scope: Scope, rid: str, status: int, seconds: float) -> None:
        if not (self.access_log or self.on_request):
            return
        route = getattr(scope.get("route"), "path", None)
        if not isinstance(route, str):
            route = self.route_of(scope) if self.route_of is not None else UNMATCHED
        client = scope.get("client")
        record = RequestRecord(request_id=rid, method=str(scope.get("method", "")),
                               route=route, path=str(scope.get("path", "")), status=status,
                               duration_s=seconds,
                               client=str(client[0]) if client else None)
        for hook in self.on_request:
            try:
                hook(record)
            except Exception:  # a broken metrics hook must not break serving
                log.exception("request hook failed")
        if self.access_log:
            level = logging.ERROR if status >= 500 else logging.INFO
            access_log.log(level, "%s %s %d %.1fms id=%s", record.method, record.path, status,
                           seconds * 1000.0, rid, extra={"tlgan_access": record})


class AccessLogFormatter(logging.Formatter):
    """Format records as one JSON object per line.

    Access records (``extra={"tlgan_access": RequestRecord}``) become ``{"ts", "level",
    "logger", "request_id", "method", "route", "path", "status", "duration_ms", "client"}``;
    any other record ``{"ts", "level", "logger", "message"}``. ``ts`` is UTC ISO 8601 (ms).
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {"ts": ts.replace("+00:00", "Z"),
                               "level": record.levelname.lower(), "logger": record.name}
        access = getattr(record, "tlgan_access", None)
        if isinstance(access, RequestRecord):
            fields = asdict(access)
            fields["duration_ms"] = round(fields.pop("duration_s") * 1000.0, 3)
            out.update(fields)
        else:
            out["message"] = record.getMessage()
            if record.exc_info:
                out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))
