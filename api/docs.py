"""The API's own documentation: ``/openapi.json``, ``/docs`` (Swagger UI) and ``/redoc``.

FastAPI serves these itself, always without authentication. The app turns that off
(``openapi_url=None`` etc.) and serves them here instead, behind the same ``X-API-Key`` as
the API when a key is set, unless ``public_docs`` says they stay public. Without an API key
they are public, like everything else.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from api.deps import ApiKey
from api.settings import Settings

OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"


def docs_router(app: FastAPI, settings: Settings) -> APIRouter:
    """The three documentation routes, protected per ``settings`` (out of the schema)."""
    protected = settings.api_key is not None and not settings.public_docs
    router = APIRouter(include_in_schema=False, dependencies=[ApiKey] if protected else [])

    def root_path(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @router.get(OPENAPI_URL)
    async def openapi(request: Request) -> JSONResponse:
        schema: dict[str, Any] = app.openapi()
        prefix = root_path(request)
        if prefix and app.root_path_in_servers:  # as FastAPI's own route does
            servers = schema.get("servers", [])
            if prefix not in {s.get("url") for s in servers}:
                schema = {**schema, "servers": [{"url": prefix}, *servers]}
        return JSONResponse(schema)

    @router.get(DOCS_URL)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=root_path(request) + OPENAPI_URL,
                                   title=f"{app.title} - Swagger UI", oauth2_redirect_url=None)

    @router.get(REDOC_URL)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=root_path(request) + OPENAPI_URL,
                              title=f"{app.title} - ReDoc")

    return router
