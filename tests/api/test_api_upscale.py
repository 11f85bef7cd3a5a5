"""Faces asked for at 128 px or more pass through the pipeline's upscaler before they are
resized: /generate (JSON and raw image), /edit, /interpolate; smaller sizes and a pipeline
without an upscaler keep Lanczos alone. GET /generators lists the upscaler."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tlgan.pipeline import Pipeline
from tlgan_base.image_codec import encode_image

LATENT = [0.1] * 16


def _expected(pipeline: Pipeline, z: np.ndarray, size: int) -> bytes:
    faces = pipeline.models.render(np.asarray(z, np.float32)[None])
    return encode_image(pipeline.for_display(faces, size)[0], "png", size)


def _plain(pipeline: Pipeline, z: np.ndarray, size: int) -> bytes:
    return encode_image(pipeline.models.render(np.asarray(z, np.float32)[None])[0], "png", size)


def _png(b64: str) -> bytes:
    return base64.b64decode(b64)


@pytest.mark.parametrize("size", [128, 384])
def test_generate_upscales_large_faces(client: TestClient, tiny_pipeline: Pipeline,
                                       size: int) -> None:
    face = client.post("/generate", json={"seed": 5, "size": size}).json()["faces"][0]
    z = np.asarray(face["latent"], np.float32)
    assert _png(face["image"]) == _expected(tiny_pipeline, z, size)
    assert _png(face["image"]) != _plain(tiny_pipeline, z, size)
    raw = client.post("/generate", json={"seed": 5, "size": size},
                      headers={"Accept": "image/png"})
    assert raw.content == _png(face["image"])


def test_small_sizes_and_no_upscaler_keep_lanczos(
        client: TestClient, tiny_pipeline: Pipeline,
        make_client: Callable[..., TestClient]) -> None:
    face = client.post("/generate", json={"seed": 5, "size": 96}).json()["faces"][0]
    z = np.asarray(face["latent"], np.float32)
    assert _png(face["image"]) == _plain(tiny_pipeline, z, 96)
    plain = dataclasses.replace(tiny_pipeline, upscaler=None)
    off = make_client(pipeline=plain)
    face = off.post("/generate", json={"seed": 5, "size": 256}).json()["faces"][0]
    assert _png(face["image"]) == _plain(tiny_pipeline, z, 256)
    assert off.get("/generators").json()["upscaler"] is None


def test_edit_and_interpolate_upscale(client: TestClient, tiny_pipeline: Pipeline) -> None:
    body = client.post("/edit", json={"latent": LATENT, "moves": {}, "size": 128,
                                      "with_features": False}).json()
    assert _png(body["image"]) == _expected(tiny_pipeline, np.asarray(body["latent"]), 128)
    faces = client.post("/interpolate", json={"latent_a": LATENT, "latent_b": [-0.1] * 16,
                                              "steps": 2, "size": 200}).json()["faces"]
    for f in faces:
        assert _png(f["image"]) == _expected(tiny_pipeline, np.asarray(f["latent"]), 200)


def test_generators_lists_the_upscaler(client: TestClient) -> None:
    up = client.get("/generators").json()["upscaler"]
    assert up["name"] == "tiny-upscaler" and up["scale"] == 2
    assert up["config"] == {"scale": 2, "channels": 4, "blocks": 1}


def test_the_upscaler_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.settings import Settings

    monkeypatch.setenv("TLGAN_UPSCALER", "none")
    assert Settings().upscaler == "none"
    monkeypatch.setenv("TLGAN_UPSCALER", "  ")
    assert Settings().upscaler is None


def test_encode_upscales_large_reconstructions(make_client: Callable[..., TestClient],
                                               tiny_pipeline: Pipeline) -> None:
    import io

    from PIL import Image

    fast = make_client(encode_steps=2)
    photo = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 80, 3), np.uint8)).save(
        photo, "JPEG")

    def encode(**form: str) -> dict[str, str]:
        files = {"image": ("me.jpg", photo.getvalue(), "application/octet-stream")}
        resp = fast.post("/encode", files=files, data={"adapter": "false", **form})
        assert resp.status_code == 200, resp.text
        body: dict[str, str] = resp.json()
        return body

    small, large = encode(), encode(size="128")
    with Image.open(io.BytesIO(_png(small["image"]))) as im:
        face = np.asarray(im.convert("RGB"))[None]
    assert _png(large["image"]) == encode_image(tiny_pipeline.for_display(face, 128)[0], "png",
                                                128)
