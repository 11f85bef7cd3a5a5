"""``GET /`` (the face editor page) and ``GET /static/<name>`` (its scripts and stylesheet).

The page is plain HTML, JavaScript ES modules (``main.js`` imports the others by relative
URL; no build step) and one CSS file, shipped as package data next to this module; it only
calls the public API (relative URLs, so it also works behind a path prefix). Include it with
``app.include_router(router)``; the routes stay out of the OpenAPI document and need no API
key (the page asks the user for one when the API says 401).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: The page's ES modules: ``main.js`` (the entry point) and the modules it imports.
MODULES = ("main.js", "api.js", "state.js", "ui.js", "face.js", "editor.js", "taught.js",
           "teach.js", "discover.js", "upload.js", "photo.js")

#: The assets the page loads, with their media types (anything else is a 404).
ASSETS: dict[str, str] = {
    **dict.fromkeys(MODULES, "text/javascript; charset=utf-8"),
    "style.css": "text/css; charset=utf-8",
}

#: Everything the page needs comes from this origin; images are data: URLs from the API.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])

_COMMON_HEADERS = {
    "Cache-Control": "no-cache",  # revalidate (ETag) so an upgraded service serves new assets
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(tags=["web"], include_in_schema=False)


def _file(request: Request, path: Path, media_type: str, headers: dict[str, str]) -> Response:
    """The file, or 304 when the client's ``If-None-Match`` already names its ETag."""
    response = FileResponse(path, media_type=media_type, headers=headers,
                            stat_result=path.stat())
    etag = response.headers.get("etag")
    wanted = request.headers.get("if-none-match")
    if etag and wanted and etag in {tag.strip() for tag in wanted.split(",")}:
        return Response(status_code=304, headers={"ETag": etag, **headers})
    return response


@router.get("/")
def index(request: Request) -> Response:
    """The face editor page."""
    return _file(request, STATIC_DIR / "index.html", "text/html; charset=utf-8",
                 {**_COMMON_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                  "Referrer-Policy": "no-referrer"})


@router.get("/static/{name}")
def asset(name: str, request: Request) -> Response:
    """One of the page's assets (a fixed list: no paths, no directory listing)."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"name: no such asset {name!r}")
    return _file(request, STATIC_DIR / name, media_type, _COMMON_HEADERS)
