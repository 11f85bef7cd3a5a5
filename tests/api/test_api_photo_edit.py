"""POST /photo/edit: the whole photo in, the same photo out with one face edited; a later
edit with the answer's latent, adapter and eyes; each bad input a 4xx naming its field."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from api_helpers import decode_image, detail
from fastapi.testclient import TestClient
from PIL import Image

from api.media import LATENT_HEADER, decode_latent_header
from tlgan.photos.faces import CELEBA_EYES, Detection
from tlgan.testing import CentredFaceDetector

MOVE = {"Smiling": 2.0, "Male": -1.5}
#: the photo: 90 x 120, its face the centre square (CentredFaceDetector): columns 15-104
WIDTH, HEIGHT = 120, 90


def photo_png(fmt: str = "PNG", seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def post(client: TestClient, data: bytes | None = None, accept: str | None = None,
         **edit: Any) -> Any:
    headers = {"accept": accept} if accept else {}
    return client.post("/photo/edit", headers=headers,
                       files={"image": ("p.png", photo_png() if data is None else data,
                                        "image/png")},
                       data={"edit": json.dumps(edit)})


class CountingDetector(CentredFaceDetector):
    def __init__(self) -> None:
        self.calls = 0

    def detect(self, photo: np.ndarray) -> list[Detection]:
        self.calls += 1
        return super().detect(photo)


class NoFace:
    def detect(self, photo: np.ndarray) -> list[Detection]:
        return []


@pytest.fixture(scope="module")
def first(tiny_pipeline: Any) -> dict[str, Any]:
    """One first edit (found, encoded, tuned) shared by the tests that read its answer."""
    from api.app import create_app
    from api.settings import Settings

    with TestClient(create_app(Settings(), pipeline=tiny_pipeline,
                               face_detector=CentredFaceDetector())) as client:
        resp = post(client, moves=MOVE)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body


def test_the_answer_has_the_whole_photo_edited_and_what_a_later_edit_sends_back(
        first: dict[str, Any]) -> None:
    assert (first["width"], first["height"], first["format"]) == (WIDTH, HEIGHT, "png")
    assert decode_image(first["image"]).shape == (HEIGHT, WIDTH, 3)
    assert first["faces"] == [{"box": [15.0, 0.0, 105.0, 90.0], "score": 1.0}]
    assert first["face"] == 0
    assert len(first["latent"]) == 16 and first["adapter"].startswith("tla1.")
    expected_eyes = CELEBA_EYES * HEIGHT + np.array([15.0, 0.0])
    assert np.allclose(first["eyes"], expected_eyes)
    assert set(first["features"]) == {"Eyeglasses", "Male", "Smiling", "Young", "Blond_Hair"}
    assert first["unheld"] == [] or first["unheld"] is None
    assert set(first["timings"]) >= {"find", "encode", "tune", "edit", "compose",
                                      "encode_image"}
    assert first["timings"]["tune"] > 0.05  # tuned 150 steps


def test_with_moves_only_the_face_changes(first: dict[str, Any]) -> None:
    original = np.asarray(Image.open(io.BytesIO(photo_png())).convert("RGB"))
    edited = decode_image(first["image"])
    assert np.array_equal(edited[:, :15], original[:, :15])
    assert np.array_equal(edited[:, 105:], original[:, 105:])
    assert not np.array_equal(edited[:, 15:105], original[:, 15:105])


def test_no_moves_returns_the_photos_pixels(client: TestClient) -> None:
    resp = post(client)
    assert resp.status_code == 200, resp.text
    original = np.asarray(Image.open(io.BytesIO(photo_png())).convert("RGB"))
    assert np.array_equal(decode_image(resp.json()["image"]), original)


def test_a_jpeg_is_answered_as_jpeg_unless_format_says_otherwise(client: TestClient) -> None:
    jpeg = photo_png("JPEG")
    body = post(client, jpeg).json()
    assert body["format"] == "jpeg"
    assert base64.b64decode(body["image"])[:3] == b"\xff\xd8\xff"
    assert post(client, jpeg, format="webp").json()["format"] == "webp"


def test_a_later_edit_skips_finding_encoding_and_tuning_and_gives_the_same_photo(
        make_client: Callable[..., TestClient], first: dict[str, Any]) -> None:
    detector = CountingDetector()
    client = make_client(face_detector=detector)
    resp = post(client, moves=MOVE, latent=first["latent"], adapter=first["adapter"],
                eyes=first["eyes"])
    assert resp.status_code == 200, resp.text
    later = resp.json()
    assert detector.calls == 0
    assert later["timings"]["encode"] < 0.05 and later["timings"]["tune"] < 0.05
    assert later["latent"] == first["latent"] and later["adapter"] == first["adapter"]
    assert np.array_equal(decode_image(later["image"]), decode_image(first["image"]))
    assert later["faces"] == [{"box": [15.0, 0.0, 105.0, 90.0], "score": None}]
    assert later["face"] == 0  # an index into the answer's faces


def test_accept_image_answers_the_photos_bytes(client: TestClient) -> None:
    resp = post(client, accept="image/png")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(resp.content)) as im:
        assert im.size == (WIDTH, HEIGHT)
    assert decode_latent_header(resp.headers[LATENT_HEADER]).shape == (16,)


def _adapter_with(adapter: str, *, sha: str | None = None, body: bytes | None = None) -> str:
    fmt, parts, prefix, data = adapter.split(".")
    if body is not None:
        data = base64.urlsafe_b64encode(body).decode("ascii")
    return ".".join([fmt, parts, sha or prefix, data])


def _not_finite(adapter: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(adapter.split(".")[3]))
    raw[0:2] = np.array([np.nan], dtype="<f2").tobytes()
    return _adapter_with(adapter, body=bytes(raw))


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (5_000, 5_000)).save(buf, "PNG")
    return buf.getvalue()


BAD_EDITS: list[tuple[str, dict[str, Any], str]] = [
    ("face out of range", {"face": 3}, "face"),
    ("negative face", {"face": -1}, "face"),
    ("unknown axis", {"moves": {"Nope": 1.0}}, "moves"),
    ("locked unknown", {"locked": ["Nope"]}, "locked"),
    ("latent too short", {"latent": [0.1, 0.2]}, "latent"),
    ("eyes malformed", {"eyes": [[1, 2]]}, "eyes"),
    ("eyes outside", {"eyes": [[10, 10], [500, 10]]}, "eyes"),
    ("format", {"format": "gif"}, "edit.format"),
    ("unknown field", {"colour": 1}, "edit.colour"),
    ("adapter garbage", {"adapter": "tla1.bl.zz.!!"}, "adapter"),
    ("adapter too big", {"adapter": "A" * 70_000}, "adapter"),
]


@pytest.mark.parametrize("what, edit, field", BAD_EDITS, ids=[b[0] for b in BAD_EDITS])
def test_bad_edits_are_422_naming_the_field(client: TestClient, first: dict[str, Any],
                                            what: str, edit: dict[str, Any],
                                            field: str) -> None:
    if "adapter" in edit:
        edit = {"latent": first["latent"], **edit}
    resp = post(client, **edit)
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith(f"{field}:"), detail(resp)


@pytest.mark.parametrize("change", ["not finite", "other generator", "adapter alone"])
def test_a_bad_adapter_is_422_naming_adapter(client: TestClient, first: dict[str, Any],
                                             change: str) -> None:
    adapter = first["adapter"]
    edit: dict[str, Any] = {"latent": first["latent"]}
    if change == "not finite":
        edit["adapter"] = _not_finite(adapter)
    elif change == "other generator":
        edit["adapter"] = _adapter_with(adapter, sha="0123456789abcdef")
    else:
        edit = {"adapter": adapter}
    resp = post(client, **edit)
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith("adapter:"), detail(resp)


@pytest.mark.parametrize("text, field", [("{not json", "edit"), ("[1, 2]", "edit"),
                                         ('{"moves": "x"}', "moves")])
def test_an_edit_field_that_is_not_a_json_object_is_named(client: TestClient, text: str,
                                                          field: str) -> None:
    resp = client.post("/photo/edit", files={"image": ("p.png", photo_png(), "image/png")},
                       data={"edit": text})
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith(f"{field}:"), detail(resp)


@pytest.mark.parametrize("data", [b"hello, not an image", photo_png()[:300], b"", _bomb()],
                         ids=["not an image", "truncated", "empty", "pixel bomb"])
def test_bad_photos_are_422_naming_image(make_client: Callable[..., TestClient],
                                         data: bytes) -> None:
    client = make_client(max_upload_pixels=1_000_000)
    resp = post(client, data)
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith("image:"), detail(resp)


def test_no_face_is_422_naming_image(make_client: Callable[..., TestClient]) -> None:
    resp = post(make_client(face_detector=NoFace()), moves=MOVE)
    assert resp.status_code == 422 and detail(resp).startswith("image:"), resp.text


def test_an_upload_above_the_byte_limit_is_413_naming_image(
        make_client: Callable[..., TestClient]) -> None:
    resp = post(make_client(max_upload_bytes=10_000), photo_png())
    assert resp.status_code == 413 and "image" in detail(resp), resp.text


def test_not_multipart_is_415(client: TestClient) -> None:
    resp = client.post("/photo/edit", json={"edit": "{}"})
    assert resp.status_code == 415


# -- the adapter on /encode, /edit and /interpolate ------------------------------------------


def test_encode_answers_an_adapter_and_eyes_that_edit_and_interpolate_render_with(
        client: TestClient) -> None:
    resp = client.post("/encode", files={"image": ("p.png", photo_png(), "image/png")},
                       data={"steps": "0"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["adapter"].startswith("tla1.")
    assert np.allclose(body["eyes"], CELEBA_EYES * HEIGHT + np.array([15.0, 0.0]))
    plain = client.post("/encode", files={"image": ("p.png", photo_png(), "image/png")},
                        data={"steps": "0", "adapter": "false"}).json()
    assert plain["adapter"] is None and plain["latent"] == body["latent"]
    assert plain["image"] != body["image"]
    assert body["quality"]["psnr"] > plain["quality"]["psnr"]  # the adapter fits the photo
    edit = client.post("/edit", json={"latent": body["latent"], "adapter": body["adapter"]})
    assert edit.status_code == 200, edit.text
    assert edit.json()["image"] == body["image"]  # rendered with the adapter
    untuned = client.post("/edit", json={"latent": body["latent"]}).json()
    assert untuned["image"] == plain["image"]
    both = client.post("/interpolate", json={"latent_a": body["latent"],
                                             "latent_b": body["latent"], "steps": 2,
                                             "adapter": body["adapter"]})
    assert both.status_code == 200, both.text
    assert [f["image"] for f in both.json()["faces"]] == [body["image"]] * 2


def test_encode_tunes_the_parts_asked_for_and_edit_and_interpolate_take_either(
        client: TestClient) -> None:
    def encode(**form: str) -> Any:
        resp = client.post("/encode", files={"image": ("p.png", photo_png(), "image/png")},
                           data={"steps": "0", **form})
        assert resp.status_code == 200, resp.text  # a refusal says why, not a missing key
        return resp

    default = encode().json()
    both = encode(adapter_parts="bn+last").json()
    bn = encode(adapter_parts="bn").json()
    assert default["adapter"].startswith("tla1.bl.") and both["adapter"] == default["adapter"]
    assert bn["adapter"].startswith("tla1.b.") and len(bn["adapter"]) < len(both["adapter"])
    assert bn["latent"] == both["latent"] and bn["image"] != both["image"]
    plain = encode(adapter="false").json()
    assert bn["quality"]["psnr"] > plain["quality"]["psnr"]  # BatchNorm alone fits too
    edit = client.post("/edit", json={"latent": bn["latent"], "adapter": bn["adapter"]})
    assert edit.status_code == 200, edit.text
    assert edit.json()["image"] == bn["image"]  # rendered with the BatchNorm-only adapter
    moved = client.post("/edit", json={"latent": bn["latent"], "adapter": bn["adapter"],
                                       "moves": MOVE})
    assert moved.status_code == 200 and moved.json()["image"] != bn["image"]
    mixed = client.post("/interpolate", json={"latent_a": bn["latent"],
                                              "latent_b": bn["latent"], "steps": 2,
                                              "adapter": bn["adapter"]})
    assert mixed.status_code == 200, mixed.text
    assert [f["image"] for f in mixed.json()["faces"]] == [bn["image"]] * 2
    # an adapter of one generator's parts string changed to the other parts: refused, naming it
    wrong = bn["adapter"].replace("tla1.b.", "tla1.bl.", 1)
    resp = client.post("/edit", json={"latent": bn["latent"], "adapter": wrong})
    assert resp.status_code == 422 and detail(resp).startswith("adapter:"), resp.text


@pytest.mark.parametrize("parts", ["last", "BN", "bn,last"])
def test_encode_refuses_other_adapter_parts_naming_the_field(client: TestClient,
                                                             parts: str) -> None:
    resp = client.post("/encode", files={"image": ("p.png", photo_png(), "image/png")},
                       data={"steps": "0", "adapter_parts": parts})
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith("adapter_parts:"), detail(resp)


@pytest.mark.parametrize("path", ["/edit", "/interpolate"])
@pytest.mark.parametrize("change", ["garbage", "not finite", "other generator", "too big"])
def test_edit_and_interpolate_refuse_a_bad_adapter_naming_it(
        client: TestClient, first: dict[str, Any], path: str, change: str) -> None:
    adapter = {"garbage": "tla1.bl.zz.!!", "not finite": _not_finite(first["adapter"]),
               "other generator": _adapter_with(first["adapter"], sha="0123456789abcdef"),
               "too big": "A" * 70_000}[change]
    body: dict[str, Any] = ({"latent": first["latent"]} if path == "/edit" else
                            {"latent_a": first["latent"], "latent_b": first["latent"],
                             "ratio": 0.5})
    resp = client.post(path, json={**body, "adapter": adapter})
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith("adapter:"), detail(resp)


def test_an_adapter_edit_is_global(client: TestClient, first: dict[str, Any]) -> None:
    resp = client.post("/edit", json={"latent": first["latent"], "adapter": first["adapter"],
                                      "locality": True})
    assert resp.status_code == 422 and detail(resp).startswith("locality:"), resp.text


# -- the Python client ---------------------------------------------------------------------


def test_client_edit_photo_returns_the_photo_and_a_later_edit_reuses_it(
        client: TestClient) -> None:
    from tlgan.client import ApiError
    from tlgan.client import Client as ApiClient

    api = ApiClient("http://testserver", transport=client._transport)
    first = api.edit_photo(photo_png(), moves=MOVE, locked=["Young"])
    assert (first.width, first.height, first.format) == (WIDTH, HEIGHT, "png")
    assert first.image.size == (WIDTH, HEIGHT) and first.data[:4] == b"\x89PNG"
    assert first.latent.shape == (16,) and first.adapter and first.face == 0
    assert set(first.timings) >= {"find", "encode", "tune", "edit", "compose"}
    later = api.edit_photo(photo_png(), moves=MOVE, locked=["Young"], latent=first.latent,
                           adapter=first.adapter, eyes=first.eyes)
    assert later.data == first.data and later.faces[0]["score"] is None
    encoded = api.encode(photo_png(), steps=0)
    assert encoded.adapter and encoded.eyes is not None
    assert encoded.adapter.startswith("tla1.bl.")
    assert api.encode(photo_png(), steps=0, adapter_parts="bn").adapter.startswith("tla1.b.")
    assert api.encode(photo_png(), steps=0, adapter=False).adapter is None
    assert np.array_equal(np.asarray(api.edit(encoded.latent, adapter=encoded.adapter).image),
                          np.asarray(encoded.image))
    with pytest.raises(ApiError) as err:
        api.edit_photo(photo_png(), face=5)
    assert err.value.status == 422 and err.value.message.startswith("face:")


def test_a_photo_above_the_request_memory_limit_is_refused_naming_image(
        make_client: Callable[..., TestClient]) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (600, 600)).save(buf, "PNG")  # 0.36 MP: about 6 MB of work
    resp = post(make_client(max_request_memory_mb=1), buf.getvalue(), moves=MOVE)
    assert resp.status_code == 422, resp.text
    assert detail(resp).startswith("image: a photo of 0.4 MP"), detail(resp)
    assert "max_request_memory_mb" in detail(resp)
