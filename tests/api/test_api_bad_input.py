"""Bad input never causes a 500: every class answers 4xx with a message naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from api_helpers import detail, post_raw, zeros_latent
from fastapi.testclient import TestClient

Z = json.dumps(zeros_latent())


@pytest.mark.parametrize("path,text,field", [
    # wrong latent length
    ("/edit", '{"latent": [0.1, 0.2]}', "latent"),
    ("/interpolate", f'{{"latent_a": [1.0], "latent_b": {Z}, "ratio": 0.5}}', "latent_a"),
    # NaN / Infinity literals (Python's JSON parser accepts them)
    ("/edit", '{"latent": [NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}', "latent.0"),
    ("/edit", f'{{"latent": {Z}, "moves": {{"Smiling": Infinity}}}}', "moves.Smiling"),
    ("/edit", f'{{"latent": {Z}, "moves": {{"Smiling": -Infinity}}}}', "moves.Smiling"),
    ("/generate", '{"truncation": NaN}', "truncation"),
    ("/generate", '{"features": {"Smiling": NaN}}', "features.Smiling"),
    ("/interpolate", f'{{"latent_a": {Z}, "latent_b": {Z}, "ratio": NaN}}', "ratio"),
    # values that would overflow float32
    ("/edit", '{"latent": [1e300, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}', "latent.0"),
    ("/edit", f'{{"latent": {Z}, "moves": {{"Smiling": 1e9}}}}', "moves.Smiling"),
    # unknown names
    ("/edit", f'{{"latent": {Z}, "moves": {{"Nope": 1}}}}', "moves"),
    ("/edit", f'{{"latent": {Z}, "locked": ["Nope"]}}', "locked"),
    ("/generate", '{"features": {"Nope": 0.5}}', "features"),
    # out of range
    ("/generate", '{"count": 0}', "count"),
    ("/generate", '{"count": 65}', "count"),
    ("/generate", '{"truncation": 0}', "truncation"),
    ("/generate", '{"truncation": 1.5}', "truncation"),
    ("/generate", '{"size": 8}', "size"),
    ("/generate", '{"size": 2048}', "size"),
    ("/generate", '{"seed": -1}', "seed"),
    ("/generate", '{"seed": 9223372036854775807, "count": 2}', "seed"),
    ("/generate", '{"seed": 100000000000000000000000000}', "seed"),
    ("/generate", '{"features": {"Smiling": 1.5}}', "features.Smiling"),
    ("/interpolate", f'{{"latent_a": {Z}, "latent_b": {Z}, "ratio": 1.5}}', "ratio"),
    ("/interpolate", f'{{"latent_a": {Z}, "latent_b": {Z}, "ratio": -0.1}}', "ratio"),
    ("/interpolate", f'{{"latent_a": {Z}, "latent_b": {Z}, "steps": 1}}', "steps"),
    ("/interpolate", f'{{"latent_a": {Z}, "latent_b": {Z}, "steps": 33}}', "steps"),
    # wrong types (no coercion)
    ("/generate", '{"count": "5"}', "count"),
    ("/generate", '{"count": true}', "count"),
    ("/generate", '{"count": 2.5}', "count"),
    ("/generate", '{"format": "gif"}', "format"),
    ("/generate", '{"with_features": "yes"}', "with_features"),
    ("/edit", '{"latent": "zeros"}', "latent"),
    ("/edit", f'{{"latent": {Z}, "moves": ["Smiling"]}}', "moves"),
    ("/interpolate", f'{{"latent_a": {Z}, "latent_b": {Z}, "ratio": 0.5, "method": "cubic"}}',
     "method"),
    # unknown / missing fields, wrong top-level shape, malformed JSON
    ("/generate", '{"sede": 1}', "sede"),
    ("/edit", '{}', "latent"),
    ("/edit", '[1, 2, 3]', "body"),
    ("/edit", '{"latent": [0.1,', "body"),
    ("/generate", 'null', "body"),
])
def test_bad_input_is_422_naming_the_field(client: TestClient, path: str, text: str,
                                           field: str) -> None:
    r = post_raw(client, path, text)
    assert r.status_code == 422, r.text
    message = detail(r)
    assert message.startswith(f"{field}:") or f"; {field}:" in message, message
    assert r.json()["errors"][0]["field"] == field


def test_service_limits_are_422(make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_count=4, max_size=32)
    r = c.post("/generate", json={"count": 5})
    assert r.status_code == 422
    assert detail(r) == "count: at most 4 faces per request on this service"
    r = c.post("/edit", json={"latent": zeros_latent(), "size": 64})
    assert r.status_code == 422 and detail(r).startswith("size: at most 32")
    assert c.post("/generate", json={"count": 4, "size": 32}).status_code == 200


def test_wrong_content_type_is_415(client: TestClient) -> None:
    r = client.post("/generate", content=b'{"seed": 1}', headers={"content-type": "text/plain"})
    assert r.status_code == 415 and detail(r).startswith("Content-Type:")
    r = client.post("/edit", content=b"latent=1",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = client.post("/generate", content=b'{"seed": 1}', headers={"content-type": ""})
    assert r.status_code == 415
    ok = client.post("/generate", content=b'{"seed": 1}',
                     headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 200


def test_oversize_body_by_content_length_is_413(make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_body_bytes=2048)
    big = json.dumps({"latent": zeros_latent(), "locked": ["Male"] * 400})
    assert len(big) > 2048
    r = post_raw(c, "/edit", big)
    assert r.status_code == 413 and detail(r).startswith("body: request body exceeds")


def test_oversize_streamed_body_is_413(make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_body_bytes=2048)

    def chunks():  # no Content-Length: chunked transfer
        yield b'{"latent": ['
        for _ in range(1000):
            yield b"0.0, "
        yield b"0.0]}"

    r = c.post("/edit", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_nan_in_response_never_happens_for_extreme_moves(client: TestClient) -> None:
    """Large (in-bounds) latents still give finite features, not a 500."""
    r = client.post("/edit", json={"latent": [999.0] * 16,
                                   "moves": {n: 999.0 for n in ("Male", "Smiling", "Young")}})
    assert r.status_code in (200, 422), r.text


def test_get_on_post_route_is_405(client: TestClient) -> None:
    assert client.get("/generate").status_code == 405
    assert client.get("/nope").status_code == 404


def test_response_byte_budget_is_checked_before_any_work(
        make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_size=1024)
    big = c.post("/generate", json={"seed": 1, "count": 64, "size": 1024})
    assert big.status_code == 422
    assert detail(big).startswith("count, size: 64 png faces of 1024 px come to about")
    assert "response limit of 32 MiB" in detail(big)
    assert [e["field"] for e in big.json()["errors"]] == ["count", "size"]
    # the same faces as JPEG fit, and so do PNG faces at a smaller size
    assert c.post("/generate", json={"seed": 1, "count": 2, "size": 1024,
                                     "format": "jpeg"}).status_code == 200
    small = make_client(max_response_bytes=65_536)
    r = small.post("/edit", json={"latent": zeros_latent(), "size": 512})
    assert r.status_code == 422 and detail(r).startswith("size: 1 png face of 512 px comes "
                                                         "to about 427 KiB, above this "
                                                         "service's response limit of 64 KiB")
    assert [e["field"] for e in r.json()["errors"]] == ["size"]  # /edit has no count
    r = small.post("/interpolate", json={"latent_a": zeros_latent(), "latent_b": zeros_latent(),
                                         "steps": 32, "size": 64})
    assert r.status_code == 422 and detail(r).startswith("steps, size: 32 png faces")
    assert [e["field"] for e in r.json()["errors"]] == ["steps", "size"]
    assert small.post("/edit", json={"latent": zeros_latent()}).status_code == 200
