"""Bounds on request headers (size) and on slow clients (time) for uvicorn's httptools
protocol.

uvicorn bounds headers only under its h11 protocol; with httptools (the faster parser that
``uvicorn[standard]`` brings) a client could send a 100 MB header and the server would buffer
it. :func:`bounded_httptools` returns the httptools protocol with a limit: once the bytes
received for one request's request line and headers pass it, the server answers
``431 Request Header Fields Too Large`` (JSON ``detail`` naming ``headers``) and closes the
connection, before the request reaches the app.

**Slow clients.** uvicorn closes a connection that stays idle ``timeout_keep_alive`` seconds
*after a response*, but not one that never sends a byte, nor one that trickles its request
line, headers or body: each would hold a file descriptor (and a request slot) for ever. The
protocol adds three deadlines:

* *idle*: a new connection that sends nothing is closed after the keep-alive timeout, like
  an idle connection between requests (so a load balancer's pooled connections, kept below
  that timeout, are never cut);
* *headers*: once the first byte of a request arrives, its request line and headers must be
  complete within ``header_timeout`` seconds;
* *body*: once the headers are in, the body must be complete within ``body_timeout``.

A request that misses its deadline is answered ``408 Request Timeout`` (JSON ``detail``
naming ``headers`` or ``body``; only while no response has started) and the connection is
closed; an app still waiting for the body sees the client disconnect. Once the request is
complete no deadline applies (the service's queue wait bounds the work).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

#: the default limit on one request's request line + headers (bytes)
DEFAULT_MAX_HEADER_BYTES = 65_536
#: default seconds a request's line and headers may take, from its first byte
DEFAULT_HEADER_TIMEOUT = 10.0
#: default seconds a request's body may take, from the end of its headers
DEFAULT_BODY_TIMEOUT = 60.0


def bounded_httptools(max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES, *,
                      header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                      body_timeout: float = DEFAULT_BODY_TIMEOUT) -> Any:
    """uvicorn's httptools protocol class, refusing request headers over ``max_header_bytes``
    and closing slow clients (see the module docstring; pass it as
    ``uvicorn.Config(http=...)``). Where httptools is not installed it returns ``"h11"``,
    which uvicorn bounds in size itself (``h11_max_incomplete_event_size``) but not in
    time."""
    if max_header_bytes < 1024:
        raise ValueError(f"max_header_bytes: must be >= 1024, got {max_header_bytes}")
    for name, value in (("header_timeout", header_timeout), ("body_timeout", body_timeout)):
        if not value > 0:
            raise ValueError(f"{name}: must be > 0, got {value}")
    try:  # lazy and optional: httptools may be absent (then h11)
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        return "h11"

    class BoundedHttpTools(HttpToolsProtocol):
        limit = max_header_bytes
        deadlines: ClassVar[dict[str, float]] = {"headers": header_timeout,
                                                  "body": body_timeout}

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_headers = True  # reading a request line and headers
            self._header_bytes = 0
            self._deadline: asyncio.TimerHandle | None = None

        # -- slow clients ------------------------------------------------------------
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            # silent from the start: idle like a connection between requests
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self, part: str) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(self.deadlines[part], self._too_slow, part)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self, part: str) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if cycle is None or cycle.response_complete or not cycle.response_started:
                body = json.dumps({
                    "detail": f"{part}: the request's {part} did not arrive within "
                              f"{self.deadlines[part]:g} s",
                    "errors": None}).encode()
                self.transport.write(b"".join([
                    b"HTTP/1.1 408 Request Timeout\r\n",
                    b"content-type: application/json\r\n",
                    b"content-length: " + str(len(body)).encode() + b"\r\n",
                    b"connection: close\r\n\r\n", body]))
            if cycle is not None and not cycle.response_complete:
                # the app (waiting for the body) sees the client gone and answers nothing
                cycle.disconnected = True
                cycle.message_event.set()
            self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm("headers")

        def data_received(self, data: bytes) -> None:
            if self._in_headers:
                self._header_bytes += len(data)
            super().data_received(data)
            if (self._in_headers and self._header_bytes > self.limit
                    and not self.transport.is_closing()):
                self._refuse()

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._header_bytes = 0
            self._arm("body")
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()
            self._in_headers = True

        def _refuse(self) -> None:
            body = json.dumps({
                "detail": f"headers: the request line and headers are larger than this "
                          f"service's limit of {self.limit} bytes",
                "errors": None}).encode()
            self.transport.write(b"".join([
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n\r\n", body]))
            self.transport.close()

    return BoundedHttpTools
