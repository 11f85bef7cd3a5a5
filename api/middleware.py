"""Pure ASGI middleware: request body limit (413) and the catch-all 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tlgan.api")


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

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = {"detail": f"body: request body exceeds the limit of {self.max_bytes} bytes",
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
        if declared is not None and declared > self.max_bytes:
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
            if size > self.max_bytes:
                await _send_json(send, 413, too_big, [(b"connection", b"close")])
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks),
                                        "more_body": False}], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class CatchAllMiddleware:
    """Turn any unhandled exception into a generic 500 JSON answer (no traceback leaks).

    The exception is logged with its traceback, and ``on_error`` (a counter hook) is called,
    so tests can show that client input never gets here.
    """

    def __init__(self, app: ASGIApp, on_error: Callable[[BaseException], None] | None = None
                 ) -> None:
        self.app = app
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if self.on_error is not None:
                self.on_error(exc)
            if started:
                raise
            await _send_json(send, 500, {"detail": "internal server error", "errors": None})
