"""POST /generate: seeds, determinism, batching invariance, conditioning, raw images."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from api_helpers import decode_image, detail
from fastapi.testclient import TestClient

from api.media import decode_latent_header
from tlgan.latents import sample_latent
from tlgan.pipeline import Pipeline
from tlgan.testing import TINY_ATTRIBUTES, TINY_LATENT


def test_generate_returns_seeded_faces(client: TestClient, tiny_pipeline: Pipeline) -> None:
    r = client.post("/generate", json={"seed": 7, "count": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["generator"] == "tiny-dcgan" and body["bundle"] == tiny_pipeline.bundle_id
    assert [f["seed"] for f in body["faces"]] == [7, 8, 9]
    for face in body["faces"]:
        z = np.asarray(face["latent"], dtype=np.float32)
        assert np.array_equal(z, sample_latent(face["seed"], TINY_LATENT))
        assert decode_image(face["image"]).shape == (64, 64, 3)
        assert set(face["features"]) == set(TINY_ATTRIBUTES)
        assert all(0.0 <= p <= 1.0 for p in face["features"].values())
        assert face["unmet"] is None
    # the image is the pipeline's render of that latent
    img = tiny_pipeline.render(sample_latent(7, TINY_LATENT)[None])[0]
    assert np.array_equal(decode_image(body["faces"][0]["image"]), img)


def test_same_request_gives_identical_bytes(client: TestClient) -> None:
    req = {"seed": 123, "count": 2, "truncation": 0.7, "format": "webp", "size": 48}
    a, b = client.post("/generate", json=req).json(), client.post("/generate", json=req).json()
    assert a == b
    assert base64.b64decode(a["faces"][0]["image"])[:4] == b"RIFF"


def test_face_alone_equals_face_in_batch(client: TestClient) -> None:
    """Rendering is batch-invariant: face i of a batch is byte-identical to rendering it alone."""
    batch = client.post("/generate", json={"seed": 100, "count": 8}).json()["faces"]
    for i in (0, 3, 7):
        alone = client.post("/generate", json={"seed": 100 + i}).json()["faces"][0]
        assert alone["image"] == batch[i]["image"]
        assert alone["latent"] == batch[i]["latent"]


def test_null_seed_is_random_and_returned(client: TestClient) -> None:
    first = client.post("/generate", json={"seed": None, "count": 2}).json()["faces"]
    seed = first[0]["seed"]
    assert first[1]["seed"] == seed + 1
    again = client.post("/generate", json={"seed": seed, "count": 2}).json()["faces"]
    assert again == first
    other = client.post("/generate", json={}).json()["faces"][0]["seed"]
    assert other != seed  # 1 in 2**63 chance of a false failure


def test_truncation_scales_latent(client: TestClient) -> None:
    full = client.post("/generate", json={"seed": 5}).json()["faces"][0]["latent"]
    half = client.post("/generate", json={"seed": 5, "truncation": 0.5}).json()["faces"][0]
    assert np.allclose(np.asarray(half["latent"]), 0.5 * np.asarray(full), atol=1e-6)


def test_without_features_is_null(client: TestClient) -> None:
    face = client.post("/generate", json={"seed": 1, "with_features": False}).json()["faces"][0]
    assert face["features"] is None


@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("jpeg", b"\xff\xd8"),
                                       ("webp", b"RIFF")])
def test_formats_and_size(client: TestClient, fmt: str, magic: bytes) -> None:
    face = client.post("/generate", json={"seed": 1, "format": fmt, "size": 32}).json()["faces"][0]
    assert base64.b64decode(face["image"]).startswith(magic)
    assert decode_image(face["image"]).shape == (32, 32, 3)


def test_feature_conditioning_reports_unmet(client: TestClient) -> None:
    targets = {"Smiling": 0.05, "Eyeglasses": 0.5}
    r = client.post("/generate", json={"seed": 11, "count": 4, "features": targets})
    assert r.status_code == 200, r.text
    plain = client.post("/generate", json={"seed": 11, "count": 4}).json()["faces"]
    moved = 0
    for face, before in zip(r.json()["faces"], plain, strict=True):
        assert isinstance(face["unmet"], list)
        for name, target in targets.items():
            missed = abs(face["features"][name] - target) > 0.2
            assert (name in face["unmet"]) == missed, (name, face)
        moved += face["latent"] != before["latent"]
    assert moved >= 1  # at least one face had to move toward its targets


def test_conditioning_unknown_attribute_is_422(client: TestClient) -> None:
    r = client.post("/generate", json={"seed": 1, "features": {"Wings": 0.9}})
    assert r.status_code == 422
    assert detail(r).startswith("features: unknown attribute 'Wings'")


def test_accept_png_returns_raw_image(client: TestClient) -> None:
    js = client.post("/generate", json={"seed": 9}).json()["faces"][0]
    r = client.post("/generate", json={"seed": 9}, headers={"Accept": "image/png"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert r.content == base64.b64decode(js["image"])
    assert r.headers["x-seed"] == "9"
    assert decode_latent_header(r.headers["x-latent"]).tolist() == js["latent"]
    assert r.headers["x-features"].startswith("{")


def test_accept_image_wildcard_uses_requested_format(client: TestClient) -> None:
    r = client.post("/generate", json={"seed": 9, "format": "jpeg"},
                    headers={"Accept": "image/*"})
    assert r.headers["content-type"] == "image/jpeg"
    r = client.post("/generate", json={"seed": 9, "format": "jpeg"},
                    headers={"Accept": "image/webp"})
    assert r.headers["content-type"] == "image/webp"
    r = client.post("/generate", json={"seed": 9},
                    headers={"Accept": "application/json;q=0.5, image/png;q=0.9"})
    assert r.headers["content-type"] == "image/png"
    r = client.post("/generate", json={"seed": 9}, headers={"Accept": "*/*"})
    assert r.headers["content-type"] == "application/json"


def test_accept_image_for_several_faces_is_406(client: TestClient) -> None:
    r = client.post("/generate", json={"seed": 9, "count": 2}, headers={"Accept": "image/png"})
    assert r.status_code == 406
    assert detail(r).startswith("Accept:")
    r = client.post("/generate", json={"seed": 9}, headers={"Accept": "text/html"})
    assert r.status_code == 406


def test_empty_features_cost_no_more_than_none(client: TestClient) -> None:
    plain = client.post("/generate", json={"seed": 5, "count": 3}).json()["faces"]
    empty = client.post("/generate", json={"seed": 5, "count": 3, "features": {}}).json()
    assert [f["image"] for f in empty["faces"]] == [f["image"] for f in plain]
    assert [f["latent"] for f in empty["faces"]] == [f["latent"] for f in plain]
    assert all(f["unmet"] == [] for f in empty["faces"])  # nothing asked, nothing unmet
    assert all(f["unmet"] is None for f in plain)
