"""API key, CORS, the catch-all 500 and the body-limit middleware."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from api_helpers import detail, zeros_latent
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import get_pipeline
from api.middleware import BodyLimitMiddleware
from api.settings import Settings
from tlgan.pipeline import Pipeline


def test_api_key_required_except_health(make_client: Callable[..., TestClient]) -> None:
    c = make_client(api_key="s3cret")
    body = {"latent": zeros_latent(), "with_features": False}
    r = c.post("/edit", json=body)
    assert r.status_code == 401 and detail(r).startswith("X-API-Key:")
    assert c.post("/edit", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert c.get("/axes").status_code == 401
    assert c.post("/edit", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert c.get("/axes", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
    assert c.get("/openapi.json").status_code == 401  # the docs too (TLGAN_PUBLIC_DOCS)
    doc = c.get("/openapi.json", headers={"X-API-Key": "s3cret"}).json()
    security = doc["components"]["securitySchemes"]
    assert security["APIKeyHeader"]["name"] == "X-API-Key"


def test_no_api_key_configured_means_open(client: TestClient) -> None:
    assert client.get("/axes").status_code == 200
    assert "securitySchemes" not in client.get("/openapi.json").json().get("components", {})


def test_cors_from_settings(make_client: Callable[..., TestClient]) -> None:
    c = make_client(cors_origins=["https://ok.example"])
    pre = {"Origin": "https://ok.example", "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type,x-api-key"}
    r = c.options("/edit", headers=pre)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://ok.example"
    r = c.options("/edit", headers={**pre, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    r = c.post("/generate", json={"seed": 1}, headers={"Origin": "https://ok.example"})
    assert r.headers["access-control-allow-origin"] == "https://ok.example"
    assert "X-Latent" in r.headers["access-control-expose-headers"]


def test_cors_setting_parses_env_list(monkeypatch: Any) -> None:
    monkeypatch.setenv("TLGAN_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("TLGAN_CORS_ORIGINS", '["https://c.example"]')
    assert Settings().cors_origins == ["https://c.example"]


def test_unexpected_error_is_generic_500(tiny_pipeline: Pipeline) -> None:
    app = create_app(Settings(), pipeline=tiny_pipeline)

    def broken() -> Pipeline:
        raise RuntimeError("secret internals /etc/passwd")

    app.dependency_overrides[get_pipeline] = broken
    with TestClient(app) as c:
        r = c.get("/axes")
        assert r.status_code == 500
        assert r.json() == {"detail": "internal server error", "errors": None}
        assert "secret" not in r.text
        assert app.state.server_errors == 1  # the counter the other tests rely on


def _call_asgi(app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
               ) -> tuple[int, bool]:
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    called = False

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True
        msg = await receive()
        assert msg["body"] == b"".join(chunks) and not msg["more_body"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(BodyLimitMiddleware(inner, max_bytes=10)(scope, receive, send))
    return sent[0]["status"], called


def test_body_limit_counts_streamed_bytes() -> None:
    assert _call_asgi(None, [b"12345", b"67890"], []) == (204, True)
    assert _call_asgi(None, [b"12345", b"67890", b"1"], []) == (413, False)  # no length
    assert _call_asgi(None, [b"1"], [(b"content-length", b"11")]) == (413, False)
    assert _call_asgi(None, [b"1"], [(b"content-length", b"x")]) == (400, False)
