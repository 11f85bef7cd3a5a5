"""POST /encode on any photo: the faces found (boxes, scores, largest first), the `face`
field, and a 422 naming `image` (no face) or `face` (index out of range)."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from api_helpers import detail
from fastapi.testclient import TestClient
from PIL import Image

from tlgan.photos.faces import Detection


class TwoFaces:
    """A small face on the left, a larger one on the right (found in that order)."""

    def detect(self, photo: np.ndarray) -> list[Detection]:
        return [Detection(box=(10, 10, 40, 40), score=0.5,
                          eyes=np.array([[20.0, 22.0], [30.0, 22.0]])),
                Detection(box=(60, 20, 120, 80), score=0.9,
                          eyes=np.array([[80.0, 45.0], [100.0, 45.0]]))]


class NoFace:
    def detect(self, photo: np.ndarray) -> list[Detection]:
        return []


def _photo() -> bytes:
    arr = np.random.default_rng(0).integers(0, 255, (100, 130, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def _post(client: TestClient, **form: str):  # type: ignore[no-untyped-def]
    return client.post("/encode", files={"image": ("p.png", _photo(), "image/png")},
                       data={"steps": "0", "with_features": "false", **form})


def test_faces_are_answered_largest_first_and_face_picks_one(
        make_client: Callable[..., TestClient]) -> None:
    client = make_client(face_detector=TwoFaces())
    resp = _post(client)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["faces"] == [{"box": [60.0, 20.0, 120.0, 80.0], "score": 0.9},
                             {"box": [10.0, 10.0, 40.0, 40.0], "score": 0.5}]
    assert body["face"] == 0
    other = _post(client, face="1").json()
    assert other["face"] == 1 and other["latent"] != body["latent"]


@pytest.mark.parametrize("detector, form, field", [
    (NoFace(), {}, "image"),
    (TwoFaces(), {"face": "2"}, "face"),
    (TwoFaces(), {"face": "-1"}, "face"),
])
def test_no_face_or_a_face_out_of_range_is_a_422_naming_its_field(
        make_client: Callable[..., TestClient], detector: object, form: dict[str, str],
        field: str) -> None:
    resp = _post(make_client(face_detector=detector), **form)
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith(f"{field}:"), detail(resp)
