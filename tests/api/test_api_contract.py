"""Contract gaps of issue #16: what the OpenAPI document, the error bodies and the routes
promise is what the service does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from api_helpers import detail, zeros_latent
from fastapi.testclient import TestClient

from api.schemas import BOUND
from tlgan.testing import TINY_LATENT

KEY = {"X-API-Key": "s3cret"}
DOCS = ("/openapi.json", "/docs", "/redoc")


def _schemas(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(property name, schema node) for every property of every component, anyOf included."""
    for model in doc["components"]["schemas"].values():
        for name, prop in model.get("properties", {}).items():
            yield name, prop
            for alt in prop.get("anyOf", []):
                yield name, alt


# -- 1. integer bounds ---------------------------------------------------------------------
def test_integer_bounds_are_published_as_integers(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    bounds = [(name, key, node[key]) for name, node in _schemas(doc)
              if node.get("type") == "integer"
              for key in ("minimum", "maximum") if key in node]
    assert any(name == "seed" for name, _, _ in bounds)
    for name, key, value in bounds:
        assert type(value) is int, (name, key, value)


def test_the_published_seed_maximum_is_what_the_service_accepts(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    maxima = {node["maximum"] for name, node in _schemas(doc)
              if name == "seed" and "maximum" in node}
    assert len(maxima) == 1
    top = maxima.pop()
    assert type(top) is int
    base = {"with_features": False, "size": 16}
    r = client.post("/generate", json={**base, "seed": top})
    assert r.status_code == 200, r.text
    assert [f["seed"] for f in r.json()["faces"]] == [top]
    # the schema has no cross-field rule: every schema-valid count works from the top seed
    count_max = doc["components"]["schemas"]["GenerateRequest"]["properties"]["count"]["maximum"]
    r = client.post("/generate", json={**base, "seed": top, "count": count_max})
    assert r.status_code == 200, r.text
    assert r.json()["faces"][-1]["seed"] == top + count_max - 1
    r = client.post("/generate", json={**base, "seed": top + 1})
    assert r.status_code == 422 and detail(r).startswith("seed:")


# -- 2. every latent the service answers with is one it accepts ------------------------------
def _accepted(client: TestClient, latent: list[float]) -> bool:
    r = client.post("/edit", json={"latent": latent, "with_features": False, "size": 16})
    return r.status_code == 200


def test_edit_refuses_a_move_out_of_the_latent_range(client: TestClient) -> None:
    axis = client.get("/axes").json()["axes"][0]["name"]
    body = {"latent": [BOUND - 1] * TINY_LATENT, "moves": {axis: BOUND},
            "with_features": False, "size": 16}
    r = client.post("/edit", json=body)
    assert r.status_code == 422 and detail(r).startswith("moves:"), r.text
    assert r.json()["errors"][0]["field"] == "moves"


@pytest.mark.parametrize("start,moves,locked", [
    (0.1, {"Smiling": 3.0}, []),
    (999.0, {"Smiling": -1.0}, []),
    (-999.5, {"Smiling": 0.4, "Male": -0.4}, []),
    (990.0, {"Smiling": 1000.0, "Male": -1000.0}, []),
    (-995.0, {"Smiling": 8.0}, ["Young", "Male"]),
    (995.0, {"Eyeglasses": -6.0, "Young": 5.0}, ["Smiling"]),
])
def test_every_edit_answer_is_a_latent_edit_accepts(client: TestClient, start: float,
                                                    moves: dict[str, float],
                                                    locked: list[str]) -> None:
    r = client.post("/edit", json={"latent": [start] * TINY_LATENT, "moves": moves,
                                   "locked": locked, "size": 16})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert _accepted(client, r.json()["latent"]), r.json()["latent"]
    else:
        assert detail(r).startswith("moves:")


def test_interpolate_never_answers_with_an_out_of_range_latent(client: TestClient) -> None:
    half = TINY_LATENT // 2
    a = [BOUND] * TINY_LATENT
    b = [BOUND] * half + [-BOUND] * half  # at right angles: slerp's midpoint is longer
    body = {"latent_a": a, "latent_b": b, "steps": 3, "with_features": False, "size": 16}
    r = client.post("/interpolate", json=body)
    assert r.status_code == 422 and detail(r).startswith("method:"), r.text
    r = client.post("/interpolate", json={**body, "method": "lerp"})
    assert r.status_code == 200, r.text
    for face in r.json()["faces"]:
        assert _accepted(client, face["latent"])
    r = client.post("/interpolate", json={**body, "latent_a": [5.0] * TINY_LATENT})
    assert r.status_code == 200, r.text
    for face in r.json()["faces"]:
        assert _accepted(client, face["latent"])


def test_feature_conditioned_faces_stay_in_range(client: TestClient) -> None:
    r = client.post("/generate", json={"seed": 0, "count": 8, "size": 16,
                                       "features": {"Smiling": 1.0, "Male": 0.0}})
    assert r.status_code == 200, r.text
    for face in r.json()["faces"]:
        assert max(abs(v) for v in face["latent"]) < BOUND
        assert _accepted(client, face["latent"])


# -- 3. echoed values are truncated ----------------------------------------------------------
HUGE = "x" * 900_000


@pytest.mark.parametrize("body,field", [
    ({"latent": zeros_latent(), "moves": {HUGE: 1.0}}, "moves"),
    ({"latent": zeros_latent(), "locked": [HUGE]}, "locked"),
    ({"latent": zeros_latent(), "moves": {HUGE: "far"}}, "moves"),
    ({"latent": zeros_latent(), HUGE: 1}, "x"),
])
def test_a_huge_unknown_name_gives_a_small_422(make_client: Callable[..., TestClient],
                                               body: dict[str, Any], field: str) -> None:
    c = make_client(max_body_bytes=2_000_000)
    r = c.post("/edit", json=body)
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) < 4096, len(r.content)
    assert detail(r).startswith(field)
    item = r.json()["errors"][0]
    assert item["field"].startswith(field) and len(item["field"]) <= 100
    # echoed cut short, or refused for its length (names have at most 64 characters)
    assert "…" in r.json()["detail"] or "at most 64 characters" in r.json()["detail"]


def test_a_huge_unknown_attribute_gives_a_small_422(make_client: Callable[..., TestClient]
                                                    ) -> None:
    c = make_client(max_body_bytes=2_000_000)
    r = c.post("/generate", json={"seed": 1, "features": {HUGE: 1.0}})
    assert r.status_code == 422 and len(r.content) < 4096, r.text[:300]
    assert detail(r).startswith("features")


# -- 5. the API's docs follow the API key ----------------------------------------------------
@pytest.mark.parametrize("api_key,public_docs,needs_key", [
    (None, False, False),
    (None, True, False),
    ("s3cret", False, True),
    ("s3cret", True, False),
])
def test_docs_need_the_key_unless_public(make_client: Callable[..., TestClient],
                                         api_key: str | None, public_docs: bool,
                                         needs_key: bool) -> None:
    c = make_client(api_key=api_key, public_docs=public_docs)
    for path in DOCS:
        r = c.get(path)
        if needs_key:
            assert r.status_code == 401, path
            assert detail(r).startswith("X-API-Key:")
            assert c.get(path, headers={"X-API-Key": "wrong"}).status_code == 401
            r = c.get(path, headers=KEY)
        assert r.status_code == 200, path
    doc = c.get("/openapi.json", headers=KEY).json()
    assert "/edit" in doc["paths"] and "/openapi.json" not in doc["paths"]
    assert "/openapi.json" in c.get("/docs", headers=KEY).text
    assert "/openapi.json" in c.get("/redoc", headers=KEY).text


def test_public_docs_setting_reads_the_environment(monkeypatch: Any) -> None:
    from api.settings import Settings

    assert Settings().public_docs is False
    monkeypatch.setenv("TLGAN_PUBLIC_DOCS", "true")
    assert Settings().public_docs is True


# -- 6. no redirect built from the client's Host ---------------------------------------------
@pytest.mark.parametrize("method,path", [("POST", "/edit/"), ("POST", "/generate/"),
                                         ("GET", "/axes/"), ("GET", "/docs/")])
def test_trailing_slash_does_not_redirect_to_the_clients_host(client: TestClient, method: str,
                                                              path: str) -> None:
    r = client.request(method, path, json={}, headers={"Host": "evil.example"},
                       follow_redirects=False)
    assert "evil.example" not in r.headers.get("location", "")
    assert 400 <= r.status_code < 500
    detail(r)
