"""Error mapping: every failure becomes ``{"detail": "<field>: <message>", "errors": [...]}``.

* request validation (pydantic) -> 422, one item per problem, ``field`` = dotted path;
* ``ValueError`` from the domain layer (messages start with the field name) -> 422;
* ``HTTPException`` -> its status (401, 404, 406, 413, 415, ...) with the same body shape;
* a full render queue or a job that waited too long -> 503 with ``Retry-After`` (seconds
  of work queued);
* the client disconnected -> 499 (logged; nobody reads it);
* models not loaded / shutting down -> 503;
* anything else -> a generic 500 (logged with its traceback, never sent to the client) by
  :class:`~api.middleware.CatchAllMiddleware`.
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.batching import BatcherStopped, JobStopped, QueueFull
from api.jobs import ClientDisconnected, QueueTimeout
from api.media import NotAcceptable
from api.schemas import CUSTOM_AXIS_FORMS
from tlgan_base.domain_errors import ECHO_LIMIT, clip, shown

log = logging.getLogger("tlgan.api")

RETRY_AFTER_S = 1
#: status logged for requests whose client went away (nginx's convention)
CLIENT_CLOSED = 499


#: Longest ``detail`` / item message of an error answer: a safety net behind the messages'
#: own cutting of echoed values (:func:`tlgan_base.domain_errors.shown`), so no error is ever large.
MESSAGE_LIMIT = 2000


def error_body(detail: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The JSON body of an error response (long texts cut, see ``MESSAGE_LIMIT``)."""
    if errors is not None:
        errors = [{**e, "field": clip(e["field"], 2 * ECHO_LIMIT),
                   "message": clip(e["message"], MESSAGE_LIMIT)} for e in errors]
    return {"detail": clip(detail, MESSAGE_LIMIT), "errors": errors}


def error_response(status: int, detail: str, errors: list[dict[str, str]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error response in the API's one shape."""
    return JSONResponse(error_body(detail, errors), status_code=status, headers=headers)


#: a field path in a domain error's message: ``count``, ``examples[3].latent``,
#: ``custom_axes.mine.head`` (new axis names have no whitespace, ':' or ',')
_FIELD_RE = re.compile(r"[A-Za-z_][^\s:,]*")


def _field(loc: Sequence[Any]) -> str:
    parts = [clip(str(p)) for p in loc]  # dict keys and unknown field names are user values
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if len(parts) > 1 else parts
    if len(parts) >= 3 and parts[0] == "custom_axes" and parts[2] in CUSTOM_AXIS_FORMS:
        del parts[2]  # the union's tag (which of a custom axis' two forms), not a field
    return ".".join(parts) or "body"


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    if err.get("type") == "json_invalid":
        ctx = err.get("ctx") or {}
        return f"malformed JSON ({ctx.get('error', 'decode error')})"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if msg.startswith("Expected UploadFile, received:"):  # a form field sent as plain text
        return ("expected a file: send the photo as a file part with a filename "
                "(curl -F image=@face.jpg), not as a plain form field")
    return msg


def validation_items(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic/FastAPI errors -> [{field, message, type}] (inputs are never echoed)."""
    items = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        message = _message(err)
        if loc and loc[-1] == "[key]":  # a dict key (a name) is wrong: the dict is the field
            field = _field(loc[:-2])
            ctx = err.get("ctx") or {}
            if err.get("type") in ("too_long", "string_too_long"):
                message = f"longer than {ctx.get('max_length')} characters"
            message = f"the name {shown(str(loc[-2]), 40)}: {message}"
        else:
            field = _field(loc)
        if err.get("type") == "json_invalid":
            field = "body"
        elif field in ("body", "") and ":" in message:
            # model-level validators name their field first: "ratio: give exactly one ..."
            field, _, message = message.partition(":")
            message = message.strip()
        items.append({"field": field, "message": message, "type": str(err.get("type", ""))})
    return items


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = validation_items(exc.errors())
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in items) or "invalid request"
    return error_response(422, detail, items)


def _unparsable(cause: BaseException | None) -> str | None:
    """Why FastAPI could not parse a JSON body (its 400 "There was an error parsing the
    body" hides it), or None when the cause is something else."""
    if isinstance(cause, UnicodeDecodeError):
        return (f"malformed JSON (not UTF-8: byte 0x{cause.object[cause.start]:02x} at "
                f"position {cause.start})")
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return ("malformed JSON (an integer with more than "
                f"{sys.get_int_max_str_digits() or 4300} digits)")
    if isinstance(cause, RecursionError):
        return "malformed JSON (nested too deeply)"
    return None


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 400 and (why := _unparsable(exc.__cause__)) is not None:
        # answered like any other malformed JSON: 422 naming the body
        return error_response(422, f"body: {why}", [{"field": "body", "message": why,
                                                      "type": "json_invalid"}])
    return error_response(exc.status_code, detail, headers=dict(exc.headers or {}))


def _fields(text: str) -> list[str] | None:
    """The fields a domain error's message starts with (``count, size: ...`` -> [count,
    size]), or None when its head names no field."""
    names = [n.strip() for n in text.split(",")]
    return names if names and all(_FIELD_RE.fullmatch(n) for n in names) else None


async def _value_handler(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ValidationError):  # our own model built wrong: a bug, not bad input
        raise exc
    detail = str(exc) or "invalid value"
    head, sep, message = detail.partition(": ")
    fields = _fields(head) if sep else None
    if fields is None:
        fields, message = ["body"], detail
    return error_response(422, detail, [{"field": f, "message": message.strip(),
                                         "type": "value_error"} for f in fields])


async def _queue_full_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueueFull)
    return error_response(503, f"server busy: {exc}",
                          headers={"Retry-After": str(exc.retry_after)})


async def _queue_timeout_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueueTimeout)
    return error_response(503, f"server busy: {exc}",
                          headers={"Retry-After": str(exc.retry_after)})


async def _gone_handler(request: Request, exc: Exception) -> Response:
    """The client left: nobody reads this answer; the access log and metrics record 499."""
    return Response(status_code=CLIENT_CLOSED)


async def _stopped_handler(request: Request, exc: Exception) -> JSONResponse:
    return error_response(503, f"unavailable: {exc}", headers={"Retry-After": str(RETRY_AFTER_S)})


async def _not_acceptable_handler(request: Request, exc: Exception) -> JSONResponse:
    return error_response(406, str(exc), [{"field": "Accept", "message": str(exc),
                                           "type": "not_acceptable"}])


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(ValueError, _value_handler)
    app.add_exception_handler(QueueFull, _queue_full_handler)
    app.add_exception_handler(QueueTimeout, _queue_timeout_handler)
    app.add_exception_handler(ClientDisconnected, _gone_handler)
    app.add_exception_handler(JobStopped, _gone_handler)
    app.add_exception_handler(BatcherStopped, _stopped_handler)
    app.add_exception_handler(NotAcceptable, _not_acceptable_handler)


def jsonable(obj: Any) -> Any:
    """Make bundle/registry metadata JSON-safe: non-finite floats -> None, numpy -> Python."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy scalar or array
        return jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)
