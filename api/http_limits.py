"""A bound on request header size for uvicorn's httptools protocol.

uvicorn bounds headers only under its h11 protocol; with httptools (the faster parser that
``uvicorn[standard]`` brings) a client could send a 100 MB header and the server would buffer
it. :func:`bounded_httptools` returns the httptools protocol with a limit: once the bytes
received for one request's request line and headers pass it, the server answers
``431 Request Header Fields Too Large`` (JSON ``detail`` naming ``headers``) and closes the
connection, before the request reaches the app.
"""

from __future__ import annotations

import json
from typing import Any

#: the default limit on one request's request line + headers (bytes)
DEFAULT_MAX_HEADER_BYTES = 65_536


def bounded_httptools(max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> Any:
    """uvicorn's httptools protocol class, refusing request headers over ``max_header_bytes``
    (pass it as ``uvicorn.Config(http=...)``). Where httptools is not installed it returns
    ``"h11"``, which uvicorn bounds itself (``h11_max_incomplete_event_size``)."""
    if max_header_bytes < 1024:
        raise ValueError(f"max_header_bytes: must be >= 1024, got {max_header_bytes}")
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        return "h11"

    class BoundedHttpTools(HttpToolsProtocol):
        limit = max_header_bytes

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_headers = True  # reading a request line and headers
            self._header_bytes = 0

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
            super().on_headers_complete()

        def on_message_complete(self) -> None:
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
