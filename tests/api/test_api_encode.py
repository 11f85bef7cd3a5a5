"""POST /encode: a photo upload in, a latent /edit takes out; every bad upload a 4xx naming
its field; the upload bounded by bytes and by pixels before decoding."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from api_helpers import decode_image, detail
from fastapi.testclient import TestClient
from PIL import Image

from tlgan.pipeline import Pipeline


def photo_bytes(fmt: str = "JPEG", size: tuple[int, int] = (80, 100), seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def post_photo(client: TestClient, data: bytes, name: str = "me.jpg",
               **form: str) -> Any:
    return client.post("/encode", files={"image": (name, data, "application/octet-stream")},
                       data=form)


@pytest.fixture
def fast(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(encode_steps=2)


def test_encode_answers_a_latent_that_edit_renders_identically(fast: TestClient) -> None:
    resp = post_photo(fast, photo_bytes(), adapter="false")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["steps"] == 2  # the service's default budget
    assert len(body["latent"]) == 16 and body["generator"] == "tiny-dcgan"
    assert decode_image(body["image"]).shape == (64, 64, 3)
    assert set(body["features"]) >= {"Smiling", "Male"}
    q = body["quality"]
    assert q["psnr"] > 0 and -1 <= q["embedding_cosine"] <= 1 and 0 <= q["label_agreement"] <= 1
    again = fast.post("/edit", json={"latent": body["latent"]}).json()
    assert again["image"] == body["image"]  # the reconstruction is the latent's face
    moved = fast.post("/edit", json={"latent": body["latent"], "moves": {"Smiling": 2.0}})
    assert moved.status_code == 200 and moved.json()["image"] != body["image"]


def test_encode_is_deterministic_and_steps_buy_quality(fast: TestClient) -> None:
    data = photo_bytes(size=(64, 64))
    a = post_photo(fast, data, steps="0", adapter="false").json()
    b = post_photo(fast, data, steps="0", adapter="false").json()
    assert a["latent"] == b["latent"] and a["steps"] == 0
    c = post_photo(fast, data, steps="15", adapter="false").json()
    assert c["quality"]["psnr"] > a["quality"]["psnr"]


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_encode_takes_png_and_webp_and_answers_size_and_format(fast: TestClient,
                                                               fmt: str) -> None:
    resp = post_photo(fast, photo_bytes(fmt), name="x", format="webp", size="128",
                      with_features="false")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["features"] is None
    with Image.open(io.BytesIO(__import__("base64").b64decode(body["image"]))) as im:
        assert im.format == "WEBP" and im.size == (128, 128)


def test_a_non_square_photo_is_centre_cropped(fast: TestClient) -> None:
    """A wide photo with a coloured band at each end encodes like its square middle."""
    rng = np.random.default_rng(3)
    middle = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    wide = np.concatenate([np.full((64, 32, 3), 255, np.uint8), middle,
                           np.zeros((64, 32, 3), np.uint8)], axis=1)

    def png(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG")
        return buf.getvalue()

    a = post_photo(fast, png(wide), steps="0").json()
    b = post_photo(fast, png(middle), steps="0").json()
    assert a["latent"] == b["latent"]


def bomb_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("data, form, field, words", [
    (b"hello, not an image", {}, "image", "not a JPEG, PNG or WebP"),
    (photo_bytes("GIF"), {}, "image", "GIF images are not accepted"),
    (photo_bytes()[:300], {}, "image", ""),
    (b"", {}, "image", "empty"),
    (photo_bytes(), {"steps": "1000"}, "steps", "at most 200"),
    (photo_bytes(), {"steps": "-1"}, "steps", "greater than or equal to 0"),
    (photo_bytes(), {"steps": "two"}, "steps", ""),
    (photo_bytes(), {"format": "gif"}, "format", ""),
    (photo_bytes(), {"size": "4096"}, "size", ""),
])
def test_bad_uploads_get_422_naming_the_field(client: TestClient, data: bytes,
                                               form: dict[str, str], field: str,
                                               words: str) -> None:
    resp = post_photo(client, data, **form)
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith(f"{field}:"), detail(resp)
    assert words in detail(resp)


def test_missing_image_and_wrong_content_type(client: TestClient) -> None:
    resp = client.post("/encode", files={"other": ("a.jpg", photo_bytes(), "image/jpeg")})
    assert resp.status_code == 422 and detail(resp).startswith("image:"), resp.text
    resp = client.post("/encode", json={"image": "aGVsbG8="})
    assert resp.status_code == 415 and "multipart/form-data" in detail(resp)
    resp = client.post("/encode", content=photo_bytes(), headers={"Content-Type": "image/jpeg"})
    assert resp.status_code == 415


def test_pixel_limit_is_checked_before_decoding(make_client: Callable[..., TestClient]
                                                ) -> None:
    client = make_client(max_upload_pixels=1_000_000)
    bomb = bomb_png(30_000)  # 900 megapixels in a few kB: decoding it would take 900 MB
    assert len(bomb) < 200_000
    t = time.perf_counter()
    resp = post_photo(client, bomb)
    assert time.perf_counter() - t < 2.0
    assert resp.status_code == 422
    assert detail(resp).startswith("image: more than 178,956,970 pixels, above this service's "
                                   "limit of 1,000,000"), detail(resp)
    resp = post_photo(client, bomb_png(5_000))  # below PIL's own bomb check: ours answers
    assert resp.status_code == 422
    assert detail(resp).startswith("image: 5000x5000 is 25,000,000 pixels, above this "
                                   "service's limit of 1,000,000"), detail(resp)
    assert post_photo(client, photo_bytes(size=(900, 1000)), steps="0").status_code == 200


def test_upload_byte_limit_is_its_own_and_names_image(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_upload_bytes=50_000, max_body_bytes=4096)
    resp = post_photo(client, b"\xff" * 60_000)
    assert resp.status_code == 413 and detail(resp).startswith("image: request body exceeds")
    big = photo_bytes(size=(120, 120))
    assert 4096 < len(big) < 50_000  # over the JSON limit, within the upload limit
    assert post_photo(client, big, steps="0").status_code == 200
    resp = client.post("/edit", json={"latent": [0.0] * 16, "moves": {"x" * 5000: 1.0}})
    assert resp.status_code == 413 and detail(resp).startswith("body:")


def test_a_service_without_an_encoder_says_so(make_client: Callable[..., TestClient],
                                              tiny_pipeline: Pipeline) -> None:
    bare = Pipeline(generator=tiny_pipeline.generator, extractor=tiny_pipeline.extractor,
                    bundle=tiny_pipeline.bundle)
    resp = post_photo(make_client(pipeline=bare), photo_bytes())
    assert resp.status_code == 422
    assert detail(resp).startswith("image: this service has no photo encoder")


def test_encode_is_documented_as_a_multipart_upload(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/encode"]["post"]
    content = op["requestBody"]["content"]["multipart/form-data"]
    ref = content["schema"]["$ref"].split("/")[-1]
    props = doc["components"]["schemas"][ref]["properties"]
    assert props["image"].get("format") == "binary" or props["image"].get("contentMediaType")
    assert {"image", "steps", "format", "size", "with_features"} <= set(props)
    assert {"413", "415", "422"} <= set(op["responses"])


def test_settings_keep_the_default_budget_within_the_cap() -> None:
    from api.settings import load_settings
    from tlgan_base.errors import ConfigError

    with pytest.raises(ConfigError, match=r"max_encode_steps \(TLGAN_MAX_ENCODE_STEPS\)"):
        load_settings(encode_steps=50, max_encode_steps=10)


def test_openapi_publishes_the_services_step_and_size_caps(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_encode_steps=30, encode_steps=10, max_size=256)
    doc = client.get("/openapi.json").json()
    op = doc["paths"]["/encode"]["post"]
    ref = op["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    props = doc["components"]["schemas"][ref.split("/")[-1]]["properties"]
    assert [b.get("maximum") for b in props["steps"]["anyOf"] if b.get("type") == "integer"] == [30]
    assert [b.get("maximum") for b in props["size"]["anyOf"] if b.get("type") == "integer"] == [256]
