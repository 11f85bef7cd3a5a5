"""Request validation found by the hostile-traffic probe: every bad input is a 4xx naming its
field, one limit has one message, names are bounded, headers stay small, phone photos work."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from api_helpers import detail, post_raw, zeros_latent
from fastapi.testclient import TestClient
from PIL import Image

from api.media import FEATURES_HEADER, FEATURES_OMITTED_HEADER, MAX_FEATURES_HEADER
from api.schemas import MAX_NAME_LENGTH
from tlgan.pipeline import MAX_CUSTOM_AXES, Pipeline
from tlgan.testing import TINY_LATENT

AXIS = [1.0] + [0.0] * (TINY_LATENT - 1)


def _head(size: int, **change: Any) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {"weights": rng.standard_normal(size).tolist(), "bias": 0.1,
            "mean": [0.0] * size, "std": [1.0] * size, "val_auc": 0.9, "C": 1.0,
            "n_train": 40, "positives_rate": 0.5, **change}


# -- #24.3: a head's numbers out of range are a 422, not an OverflowError 500 ------------------
@pytest.mark.parametrize("literal, field", [
    ('"n_train": 1e400', "n_train"),
    ('"n_train": Infinity', "n_train"),
    ('"n_train": 1e300', "n_train"),
    ('"n_train": NaN', "n_train"),
    ('"C": 1e400', "C"),
    ('"bias": -Infinity', "bias"),
    ('"val_auc": 1e400', "val_auc"),
])
def test_a_custom_heads_huge_or_infinite_number_is_422_naming_the_head(
        client: TestClient, tiny_pipeline: Pipeline, literal: str, field: str) -> None:
    assert tiny_pipeline.extractor is not None
    head = _head(tiny_pipeline.extractor.embedding_size)
    key = literal.split(":")[0].strip('"')
    head[key] = "@@"
    text = json.dumps({"latent": zeros_latent(), "custom_axes": {
        "mine": {"direction": AXIS, "head": head}}}).replace('"@@"', literal.split(": ")[1])
    r = post_raw(client, "/edit", text)
    assert r.status_code == 422, r.text
    assert detail(r).startswith(f"custom_axes.mine.head.{field}:"), detail(r)
    assert r.json()["errors"][0]["field"] == f"custom_axes.mine.head.{field}"


# -- #23: one limit, one message --------------------------------------------------------------
def test_steps_over_either_limit_get_the_services_one_message(client: TestClient) -> None:
    photo = io.BytesIO()
    _face().save(photo, "PNG")
    for steps in ("500", "100000", "9" * 30):
        r = client.post("/encode", files={"image": ("face.png", photo.getvalue(), "image/png")},
                        data={"steps": steps})
        assert r.status_code == 422, r.text
        assert detail(r).startswith("steps: at most 200 on this service, got "), detail(r)


def test_count_size_and_interpolate_steps_over_any_limit_get_one_message(
        make_client: Callable[..., TestClient]) -> None:
    c = make_client(max_count=4, max_size=64)
    for count in (5, 65, 10**30):
        r = c.post("/generate", json={"count": count})
        assert r.status_code == 422
        assert detail(r) == "count: at most 4 faces per request on this service"
    for size in (128, 2048):
        r = c.post("/generate", json={"size": size})
        assert r.status_code == 422 and detail(r) == "size: at most 64 pixels on this service"
    for steps in (5, 33):
        r = c.post("/interpolate", json={"latent_a": zeros_latent(),
                                         "latent_b": zeros_latent(), "steps": steps})
        assert r.status_code == 422
        assert detail(r) == "steps: at most 4 faces per request on this service"
    props = c.get("/openapi.json").json()["components"]["schemas"]
    assert props["GenerateRequest"]["properties"]["count"]["maximum"] == 4
    assert props["InterpolateRequest"]["properties"]["steps"]["anyOf"][0]["maximum"] == 4


# -- #24.8: phone photos ----------------------------------------------------------------------
def _face(seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8))


def test_an_mpo_photo_is_encoded_from_its_first_frame(client: TestClient) -> None:
    first, second = _face(1), _face(2)
    mpo = io.BytesIO()
    first.save(mpo, "MPO", save_all=True, append_images=[second], quality=95)
    with Image.open(io.BytesIO(mpo.getvalue())) as check:
        assert check.format == "MPO" and getattr(check, "n_frames", 1) == 2
    jpeg = io.BytesIO()
    first.save(jpeg, "JPEG", quality=95)

    def encode(data: bytes) -> dict[str, Any]:
        r = client.post("/encode", files={"image": ("IMG_0001.jpg", data, "image/jpeg")},
                        data={"steps": "0"})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    assert encode(mpo.getvalue())["latent"] == encode(jpeg.getvalue())["latent"]


def test_heic_is_named_as_not_accepted(client: TestClient) -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200
    r = client.post("/encode", files={"image": ("IMG_0001.HEIC", heic, "image/heic")})
    assert r.status_code == 422
    assert detail(r).startswith("image: HEIC images are not accepted; send a JPEG, PNG or WebP")
    r = client.post("/encode", files={"image": ("x.bin", b"\x01" * 300, "image/jpeg")})
    assert r.status_code == 422 and "HEIC, AVIF, GIF, TIFF" in detail(r)


# -- #24.9: bounded names, bounded headers ----------------------------------------------------
@pytest.mark.parametrize("name", ["x" * 100_000, "x" * (MAX_NAME_LENGTH + 1), "my axis",
                                  "a:b", "a,b", "tab\there", ""])
def test_custom_axis_names_are_bounded(client: TestClient, name: str) -> None:
    r = client.post("/edit", json={"latent": zeros_latent(), "custom_axes": {name: AXIS}},
                    headers={"accept": "image/png"})
    assert r.status_code == 422, r.status_code
    assert len(r.content) < 2048 and detail(r).startswith("custom_axes: the name ")
    assert r.json()["errors"][0]["field"] == "custom_axes"
    ok = client.post("/edit", json={"latent": zeros_latent(),
                                    "custom_axes": {"Ünïcode-name_1.2": AXIS}})
    assert ok.status_code == 200, ok.text


def test_other_name_fields_are_bounded(client: TestClient) -> None:
    long = "x" * (MAX_NAME_LENGTH + 1)
    for path, body in (("/edit", {"latent": zeros_latent(), "moves": {long: 1.0}}),
                       ("/edit", {"latent": zeros_latent(), "locked": [long]}),
                       ("/generate", {"features": {long: 0.5}})):
        r = client.post(path, json=body)
        assert r.status_code == 422
        assert (f"at most {MAX_NAME_LENGTH} characters" in detail(r)
                or f"longer than {MAX_NAME_LENGTH} characters" in detail(r)), detail(r)


def test_features_that_do_not_fit_a_header_are_omitted_with_a_pointer(
        client: TestClient, tiny_pipeline: Pipeline) -> None:
    assert tiny_pipeline.extractor is not None
    size = tiny_pipeline.extractor.embedding_size
    axes = {f"{i:02d}".ljust(MAX_NAME_LENGTH, "n"): {"direction": AXIS, "head": _head(size)}
            for i in range(MAX_CUSTOM_AXES)}
    r = client.post("/edit", json={"latent": zeros_latent(), "custom_axes": axes},
                    headers={"accept": "image/png"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert FEATURES_HEADER not in r.headers
    assert "ask for application/json" in r.headers[FEATURES_OMITTED_HEADER]
    assert sum(len(k) + len(v) + 4 for k, v in r.headers.items()) < 4096
    one = client.post("/edit", json={"latent": zeros_latent(), "custom_axes": dict(
        list(axes.items())[:2])}, headers={"accept": "image/png"})
    features = json.loads(one.headers[FEATURES_HEADER])
    assert len(features) == 5 + 2 and len(one.headers[FEATURES_HEADER]) <= MAX_FEATURES_HEADER
    assert FEATURES_OMITTED_HEADER not in one.headers


# -- #24.10: the published schema is the real one; errors name their field --------------------
def test_openapi_publishes_custom_axes_and_head_bounds(client: TestClient,
                                                        tiny_pipeline: Pipeline) -> None:
    assert tiny_pipeline.extractor is not None
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    custom = schemas["EditRequest"]["properties"]["custom_axes"]
    bare = [f for f in custom["additionalProperties"]["oneOf"] if f.get("type") == "array"]
    assert bare and bare[0]["minItems"] == bare[0]["maxItems"] == TINY_LATENT
    assert custom["propertyNames"]["maxLength"] == MAX_NAME_LENGTH
    assert "pattern" in custom["propertyNames"]
    direction = schemas["CustomAxisIn"]["properties"]["direction"]
    assert direction["minItems"] == direction["maxItems"] == TINY_LATENT
    weights = schemas["HeadIn"]["properties"]["weights"]
    assert weights["minItems"] == weights["maxItems"] == tiny_pipeline.extractor.embedding_size
    assert schemas["HeadIn"]["properties"]["n_train"]["type"] == "integer"
    r = client.post("/edit", json={"latent": zeros_latent(),
                                   "custom_axes": {"mine": [1.0] * 4096}})
    assert r.status_code == 422 and detail(r).startswith("custom_axes.mine: expected 16")


def test_a_failed_fit_names_the_examples(make_client: Callable[..., TestClient],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def flat(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("attribute 'mine': every training label is 0.5; a logit axis "
                         "cannot be fitted (exclude this attribute)")

    monkeypatch.setattr("api.routes.axis_routes.teach_axis", flat)
    client = make_client()
    examples = [{"latent": zeros_latent(), "label": i % 2} for i in range(10)]
    r = client.post("/axes/fit", json={"name": "mine", "examples": examples})
    assert r.status_code == 422
    assert detail(r).startswith("examples: no axis can be taught from these examples")
    assert r.json()["errors"][0]["field"] == "examples"


def test_an_image_field_without_a_filename_is_named_clearly(client: TestClient) -> None:
    r = client.post("/encode", data={"image": "not a file"},
                    files={"other": ("x.txt", b"x", "text/plain")})
    assert r.status_code == 422
    assert detail(r) == ("image: expected a file: send the photo as a file part with a "
                         "filename (curl -F image=@face.jpg), not as a plain form field")


@pytest.mark.parametrize("body, words", [
    (b'{"latent": "\xff\xfe"}', "malformed JSON (not UTF-8: byte 0xff at position 12)"),
    (b'{"seed": ' + b"9" * 5000 + b"}", "malformed JSON (an integer with more than 4300 "
                                        "digits)"),
])
def test_unparsable_json_is_422_naming_the_body(client: TestClient, body: bytes,
                                                words: str) -> None:
    r = client.post("/generate", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert detail(r) == f"body: {words}"
    assert r.json()["errors"] == [{"field": "body", "message": words, "type": "json_invalid"}]
