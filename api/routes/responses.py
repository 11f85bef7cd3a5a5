"""OpenAPI response documentation shared by the routes: error answers and image answers."""

from __future__ import annotations

from typing import Any

from api.media import (
    FEATURES_HEADER,
    FEATURES_OMITTED_HEADER,
    LATENT_HEADER,
    MAX_FEATURES_HEADER,
    SEED_HEADER,
)
from api.schemas import ErrorResponse
from tlgan_base.image_codec import MEDIA_TYPES


def error_doc(description: str) -> dict[str, Any]:
    """OpenAPI for an error answer: the error body and ``description``."""
    return {"model": ErrorResponse, "description": description}


#: Error answers every protected route may give.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: error_doc("Missing or wrong X-API-Key (only when the service has an API key)."),
    500: error_doc("Internal error (never caused by client input; details are in the server log)."),
    503: {**error_doc("Models not loaded yet, shutting down, or the render queue is full."),
          "headers": {"Retry-After": {"description": "Seconds to wait before retrying.",
                                      "schema": {"type": "integer"}}}},
}

#: Error answers of routes with a JSON body.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMMON_ERRORS,
    400: error_doc("Unreadable body or Content-Length."),
    413: error_doc("Request body larger than the service's max_body_bytes."),
    415: error_doc("Content-Type is not application/json."),
    422: error_doc("Invalid field: the message names it (type, range, length, unknown name, "
              "NaN/Infinity, service limits)."),
}

NOT_ACCEPTABLE: dict[int | str, dict[str, Any]] = {
    406: error_doc("Accept allows neither JSON nor (where offered) an image type."),
}

_BINARY = {"schema": {"type": "string", "format": "binary"}}


def image_200(description: str, seed: bool) -> dict[int | str, dict[str, Any]]:
    """OpenAPI for a 200 that is JSON, or raw image bytes when Accept asks for an image."""
    headers: dict[str, Any] = {
        LATENT_HEADER: {"description": "Raw image answers: the latent, base64 of float32 "
                        "little-endian.", "schema": {"type": "string"}},
        FEATURES_HEADER: {"description": "Raw image answers with with_features: JSON "
                          "{attribute: probability}, when it fits in "
                          f"{MAX_FEATURES_HEADER} bytes.", "schema": {"type": "string"}},
        FEATURES_OMITTED_HEADER: {"description": "Instead of X-Features when the features "
                                  "do not fit in a header: why (ask for JSON to get them).",
                                  "schema": {"type": "string"}},
    }
    if seed:
        headers[SEED_HEADER] = {"description": "Raw image answers: the face's seed.",
                                "schema": {"type": "string"}}
    return {
        200: {"description": description,
              "content": {media: _BINARY for media in MEDIA_TYPES.values()},
              "headers": headers},
        406: error_doc("Accept allows neither JSON nor an image type (or asks for an image of "
                  "several faces)."),
    }
