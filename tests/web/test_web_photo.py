"""Edit a whole photo on the page: "Edit a whole photo" posts it to POST /photo/edit, shows it
whole with the faces found outlined, a click picks a face, the sliders and locks edit it (a
display-size copy is sent while sliding, with the latent, adapter and eyes of the first
answer), and "Download photo" saves the full-resolution original, edited. Headless Chromium
against the real server (loopback), with a fake face detector that finds two faces where a
composed photo has them."""

from __future__ import annotations

import base64
import io
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_web_editor import expect, open_editor, row
from web_helpers import web_app

from tlgan.photos.faces import CELEBA_EYES, Detection
from tlgan.pipeline import Pipeline
from tlgan.testing import serve

pytestmark = pytest.mark.browser

Page = Any
NewPage = Callable[..., tuple[Any, Any]]

#: The composed photo: bigger than the page's display copy (longer side 1280 px).
WIDTH, HEIGHT = 1600, 1000
#: Its faces, as fractions of the photo: (centre x, centre y, side / height), largest first.
FACES = ((0.62, 0.5, 0.5), (0.2, 0.3, 0.24))


def face_box(i: int, w: float, h: float) -> tuple[float, float, float, float]:
    """Face ``i``'s aligned frame in a ``w`` x ``h`` photo (left, top, right, bottom)."""
    cx, cy, side = FACES[i]
    s = side * h
    return (cx * w - s / 2, cy * h - s / 2, cx * w + s / 2, cy * h + s / 2)


class TwoFaces:
    """Finds FACES wherever the photo is, at any scale (the copy and the original alike),
    framed as aligned crops (the eyes where CelebA's crops have them)."""

    def detect(self, photo: np.ndarray) -> list[Detection]:
        h, w = photo.shape[:2]
        found = []
        for i in range(len(FACES)):
            left, top, right, bottom = face_box(i, w, h)
            eyes = CELEBA_EYES * (right - left) + np.array([left, top])
            found.append(Detection(box=(left, top, right, bottom), score=0.9 - 0.1 * i,
                                   eyes=eyes))
        return found


class NoFace:
    def detect(self, photo: np.ndarray) -> list[Detection]:
        return []


def composed_photo() -> bytes:
    """A PNG: a textured background with two face-ish ovals where FACES are."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    rgb = np.stack([60 + 80 * x / WIDTH, 90 + 60 * y / HEIGHT, 120 + 0 * x], axis=-1)
    rgb += rng.normal(0.0, 12.0, rgb.shape)
    for i in range(len(FACES)):
        left, top, right, bottom = face_box(i, WIDTH, HEIGHT)
        cx, cy, r = (left + right) / 2, (top + bottom) / 2, (right - left) / 2
        oval = ((x - cx) / (0.7 * r)) ** 2 + ((y - cy) / (0.9 * r)) ** 2 < 1.0
        rgb[oval] = (225.0, 180.0, 150.0)
        rgb[oval & (np.abs(y - (top + 0.43 * (bottom - top))) < 0.03 * r)] = (30.0, 30.0, 30.0)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def outside(shape: tuple[int, ...], box: tuple[float, float, float, float],
            margin: int) -> np.ndarray:
    """A mask of the pixels farther than ``margin`` from ``box``."""
    h, w = shape[:2]
    left, top, right, bottom = box
    mask = np.ones((h, w), bool)
    mask[max(0, int(top) - margin):int(bottom) + margin + 1,
         max(0, int(left) - margin):int(right) + margin + 1] = False
    return mask


#: Chromium reports no body for a multipart request holding an in-memory blob: the page's
#: fetch is watched instead, recording each POST /photo/edit's ``edit`` field and ``image``.
WATCH_FETCH = """
  const pageFetch = window.fetch;
  window.photoRequests = [];
  window.fetch = function (input, init) {
    if (String(input).endsWith("photo/edit") && init && init.body instanceof FormData) {
      const image = init.body.get("image");
      window.photoRequests.push({ edit: JSON.parse(init.body.get("edit")), name: image.name,
                                  type: image.type, size: image.size });
    }
    return pageFetch.apply(this, arguments);
  };
"""


def photo_call(page: Page, action: Callable[[], None]) -> tuple[dict[str, Any], Any]:
    """Do ``action``; return (what the page sent: ``edit``, and the ``image``'s name, type and
    size, and the response) of the POST /photo/edit it causes."""
    count = page.evaluate("window.photoRequests.length")
    with page.expect_response(lambda r: r.url.endswith("/photo/edit")
                              and r.request.method == "POST") as info:
        action()
    resp = info.value
    assert resp.status == 200, resp.text()
    sent: list[dict[str, Any]] = page.evaluate("window.photoRequests")
    assert len(sent) == count + 1
    return sent[-1], resp


@pytest.fixture(scope="module")
def photo_url(tiny_pipeline: Pipeline) -> Iterator[str]:
    with serve(web_app(tiny_pipeline, face_detector=TwoFaces())) as url:
        yield url


def test_edit_a_whole_photo(photo_url: str, new_page: NewPage, tmp_path: Path,
                            screenshot: Callable[[Any, str], None]) -> None:
    page, _ = new_page(photo_url)
    page.add_init_script(WATCH_FETCH)
    open_editor(page)
    original = composed_photo()
    path = tmp_path / "two people.png"
    path.write_bytes(original)
    expect(page.get_by_test_id("photo-view")).to_be_hidden()

    # Upload: the first request sends no moves; the photo is shown with its faces outlined.
    edit, resp = photo_call(page, lambda: page.get_by_test_id("photo-input").set_input_files(
        str(path)))
    first = resp.json()
    assert edit["edit"] == {"moves": {}, "locked": [], "face": None, "format": "jpeg"}
    assert edit["type"] == "image/jpeg" and edit["size"] < len(original)  # the display copy
    # The display copy: longer side 1280 px, the photo's aspect kept.
    assert (first["width"], first["height"]) == (1280, 800)
    scale = 1280 / WIDTH
    assert first["face"] == 0 and len(first["faces"]) == 2
    view = page.get_by_test_id("photo-view")
    expect(view).to_be_visible()
    expect(page.get_by_test_id("face-figure")).to_be_hidden()
    image = page.get_by_test_id("photo-image")
    expect(image).to_have_attribute("src", "data:image/jpeg;base64," + first["image"])
    boxes = page.get_by_test_id("photo-face")
    expect(boxes).to_have_count(2)
    expect(boxes.nth(0)).to_have_attribute("aria-pressed", "true")
    expect(boxes.nth(1)).to_have_attribute("aria-pressed", "false")
    shown = image.bounding_box()
    assert shown is not None and shown["width"] <= 1280
    for i, face in enumerate(first["faces"]):
        box = boxes.nth(i).bounding_box()
        assert box is not None
        k = shown["width"] / first["width"]
        left, top, right, bottom = face["box"]
        assert abs(box["x"] - (shown["x"] + left * k)) < 2
        assert abs(box["y"] - (shown["y"] + top * k)) < 2
        assert abs(box["width"] - (right - left) * k) < 2
        assert abs(box["height"] - (bottom - top) * k) < 2
    expect(page.get_by_test_id("photo-label")).to_have_text("photo two people.png · face 1 of 2")
    expect(row(page, "Smiling").get_by_test_id("axis-slider")).to_be_enabled()
    screenshot(page, "photo")

    # A slider edits the picked face: the copy again, with latent, adapter and eyes; the
    # photo changes inside the face only.
    before = pixels(base64.b64decode(first["image"]))
    edit, resp = photo_call(page, lambda: row(page, "Smiling").get_by_test_id(
        "axis-slider").evaluate(
        """el => { el.value = '2'; el.dispatchEvent(new Event('input', {bubbles: true}));
                   el.dispatchEvent(new Event('change', {bubbles: true})); }"""))
    moved = resp.json()
    assert edit["edit"] == {"moves": {"Smiling": 2}, "locked": [], "latent": first["latent"],
                            "adapter": first["adapter"], "eyes": first["eyes"],
                            "format": "jpeg"}
    assert edit["type"] == "image/jpeg"
    assert moved["latent"] == first["latent"] and moved["adapter"] == first["adapter"]
    assert moved["faces"] == [{"box": moved["faces"][0]["box"], "score": None}]  # not found again
    expect(image).to_have_attribute("src", "data:image/jpeg;base64," + moved["image"])
    after = pixels(base64.b64decode(moved["image"]))
    assert after.shape == before.shape
    face0 = tuple(first["faces"][0]["box"])
    away = outside(before.shape, face0, 16)  # JPEG blocks touching the face may change
    assert np.array_equal(after[away], before[away])
    assert np.abs(after[~away].astype(int) - before[~away]).max() > 10
    expect(page.get_by_test_id("photo-label")).to_have_text(
        "photo two people.png · face 1 of 2 · Smiling +2.0")

    # Each later slider edit's round trip, as the page measures it.
    times = []
    young = row(page, "Young").get_by_test_id("axis-slider")

    def release(value: float) -> Callable[[], None]:
        return lambda: young.evaluate(
            """(el, v) => { el.value = String(v);
                            el.dispatchEvent(new Event('change', {bubbles: true})); }""", value)

    for value in (0.5, 1.0, 1.5, -1.0, -2.0):
        photo_call(page, release(value))
        timing = page.get_by_test_id("photo-timing")
        expect(timing).to_contain_text("round trip")
        times.append(float(timing.get_attribute("data-ms") or "nan"))
    print(f"\nphoto slider edit round trip (tiny models, 1280x800 copy): "
          f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms")
    assert all(t > 0 for t in times)

    # A lock is sent with the moves (which stay relative to the face's own latent).
    edit, resp = photo_call(page, row(page, "Male").get_by_test_id("axis-lock").click)
    assert edit["edit"]["locked"] == ["Male"] and edit["edit"]["moves"] == {
        "Smiling": 2, "Young": -2}
    assert resp.json()["latent"] == first["latent"]

    # Download: the full-resolution original with the moves, saved at its own size.
    with page.expect_download() as download_info:
        edit, resp = photo_call(page, page.get_by_test_id("photo-download").click)
    full = resp.json()
    assert edit["name"] == "two people.png" and edit["size"] == len(original)
    assert "format" not in edit["edit"] and edit["edit"]["latent"] == first["latent"]
    assert edit["edit"]["moves"] == {"Smiling": 2, "Young": -2}
    assert np.allclose(edit["edit"]["eyes"], np.array(first["eyes"]) / scale, atol=0.01)
    assert (full["width"], full["height"]) == (WIDTH, HEIGHT)
    assert np.allclose(full["eyes"], np.array(first["eyes"]) / scale, atol=0.01)
    assert full["latent"] == first["latent"]
    download = download_info.value
    assert download.suggested_filename == "two people-edited.png"
    saved = tmp_path / "saved.png"
    download.save_as(saved)
    with Image.open(saved) as img:
        assert img.format == "PNG" and img.size == (WIDTH, HEIGHT)
    got, want = pixels(saved.read_bytes()), pixels(original)
    away = outside(want.shape, face_box(0, WIDTH, HEIGHT), 2)
    assert np.array_equal(got[away], want[away])  # byte-identical outside the face
    assert np.abs(got[~away].astype(int) - want[~away]).max() > 10
    expect(page.get_by_test_id("notice")).to_have_text(f"Saved {WIDTH}×{HEIGHT} px.")

    # Click the other face: a new first request for it (no moves, no latent).
    edit, resp = photo_call(page, boxes.nth(1).click)
    other = resp.json()
    assert edit["edit"]["face"] == 1 and edit["edit"]["moves"] == {}
    assert "latent" not in edit["edit"] and "eyes" not in edit["edit"]
    assert other["face"] == 1 and other["latent"] != first["latent"]
    expect(boxes.nth(1)).to_have_attribute("aria-pressed", "true")
    expect(row(page, "Smiling").get_by_test_id("axis-value")).to_have_text("±0.0")
    edit, resp = photo_call(page, row(page, "Smiling").get_by_test_id("axis-plus").click)
    assert resp.json()["latent"] == other["latent"]
    assert edit["edit"]["eyes"] == other["eyes"] and edit["edit"]["moves"] == {"Smiling": 0.5}
    assert edit["edit"]["locked"] == ["Male"]
    expect(boxes).to_have_count(2)  # the faces found stay outlined

    # Close: back to the face editor, on the photo face's latent.
    with page.expect_response(lambda r: r.url.endswith("/edit")
                              and not r.url.endswith("/photo/edit")) as info:
        page.get_by_test_id("photo-close").click()
    sent = info.value.request.post_data_json
    assert sent["latent"] == other["latent"] and sent["adapter"] == other["adapter"]
    expect(view).to_be_hidden()
    expect(page.get_by_test_id("face-figure")).to_be_visible()
    expect(page.get_by_test_id("face-label")).to_contain_text("photo two people.png")


def test_photo_without_a_face_shows_the_services_message(
        tiny_pipeline: Pipeline, new_page: NewPage, tmp_path: Path) -> None:
    with serve(web_app(tiny_pipeline, face_detector=NoFace())) as url:
        page, _ = new_page(url)
        open_editor(page)
        face = page.get_by_test_id("face-image").get_attribute("src")
        # Not a photo: the service's 422 naming image (the browser cannot decode it either).
        notes = tmp_path / "notes.jpg"
        notes.write_text("not a photo\n")
        with page.expect_response(lambda r: r.url.endswith("/photo/edit")) as info:
            page.get_by_test_id("photo-input").set_input_files(str(notes))
        assert info.value.status == 422
        detail = info.value.json()["detail"]
        assert detail.startswith("image: not a JPEG, PNG or WebP image")
        expect(page.get_by_test_id("error-text")).to_have_text(
            f"Edit the photo failed (HTTP 422): {detail}")
        expect(page.get_by_test_id("photo-view")).to_be_hidden()
        # A photo without a face: the same.
        path = tmp_path / "landscape.png"
        path.write_bytes(composed_photo())
        with page.expect_response(lambda r: r.url.endswith("/photo/edit")) as info:
            page.get_by_test_id("photo-input").set_input_files(str(path))
        resp = info.value
        assert resp.status == 422
        detail = resp.json()["detail"]
        assert detail.startswith("image:")
        expect(page.get_by_test_id("error-text")).to_have_text(
            f"Edit the photo failed (HTTP 422): {detail}")
        expect(page.get_by_test_id("photo-view")).to_be_hidden()
        expect(page.get_by_test_id("face-figure")).to_be_visible()
        expect(page.get_by_test_id("face-image")).to_have_attribute("src", face or "")
        # The editor still works on the face it had.
        with page.expect_response(lambda r: r.url.endswith("/edit")) as info:
            row(page, "Smiling").get_by_test_id("axis-plus").click()
        assert info.value.status == 200
        expect(page.get_by_test_id("error")).to_be_hidden()


def test_moves_while_an_edit_is_in_flight_and_stale_answers(
        photo_url: str, new_page: NewPage, tmp_path: Path) -> None:
    page, _ = new_page(photo_url)
    page.add_init_script(WATCH_FETCH)
    open_editor(page)
    path = tmp_path / "two.png"
    path.write_bytes(composed_photo())
    _, resp = photo_call(page, lambda: page.get_by_test_id("photo-input").set_input_files(
        str(path)))
    first = resp.json()
    image = page.get_by_test_id("photo-image")
    smiling = row(page, "Smiling").get_by_test_id("axis-slider")

    def release(value: float) -> None:
        smiling.evaluate("""(el, v) => { el.value = String(v);
                   el.dispatchEvent(new Event('change', {bubbles: true})); }""", value)

    def wait_held(count: int) -> None:
        while len(held) < count:
            page.wait_for_timeout(20)

    # Moves made while an edit is in flight: one more request when it is back, with the
    # latest moves.
    held: list[Any] = []
    page.route("**/photo/edit", lambda route: held.append(route))
    release(1.0)
    wait_held(1)
    release(2.0)
    release(3.0)
    page.wait_for_timeout(300)
    assert len(held) == 1  # nothing more is sent while one is in flight
    expect(page.get_by_test_id("photo-frame")).to_have_attribute("aria-busy", "true")
    with page.expect_response(lambda r: r.url.endswith("/photo/edit")):
        held[0].continue_()
    wait_held(2)
    with page.expect_response(lambda r: r.url.endswith("/photo/edit")) as later:
        held[1].continue_()
    sent = page.evaluate("window.photoRequests")
    assert [r["edit"]["moves"] for r in sent[1:]] == [{"Smiling": 1.0}, {"Smiling": 3.0}]
    latest = later.value.json()
    expect(image).to_have_attribute("src", "data:image/jpeg;base64," + latest["image"])
    expect(page.get_by_test_id("photo-frame")).to_have_attribute("aria-busy", "false")

    # An answer for a face no longer edited is dropped: the other face's answer stays.
    release(-2.0)
    wait_held(3)
    page.get_by_test_id("photo-face").nth(1).click()
    wait_held(4)
    with page.expect_response(lambda r: r.url.endswith("/photo/edit")) as info:
        held[3].continue_()
    other = info.value.json()
    assert other["face"] == 1
    expect(image).to_have_attribute("src", "data:image/jpeg;base64," + other["image"])
    with page.expect_response(lambda r: r.url.endswith("/photo/edit")) as stale:
        held[2].continue_()
    page.unroute("**/photo/edit")
    assert stale.value.json()["latent"] == first["latent"]
    page.wait_for_timeout(300)
    expect(image).to_have_attribute("src", "data:image/jpeg;base64," + other["image"])
    expect(page.get_by_test_id("photo-face").nth(1)).to_have_attribute("aria-pressed", "true")
    expect(row(page, "Smiling").get_by_test_id("axis-value")).to_have_text("±0.0")


def test_photo_view_fits_a_phone(photo_url: str, new_page: NewPage, tmp_path: Path,
                                 screenshot: Callable[[Any, str], None]) -> None:
    page, _ = new_page(photo_url, viewport={"width": 390, "height": 844})
    page.add_init_script(WATCH_FETCH)
    open_editor(page)
    path = tmp_path / "two.png"
    path.write_bytes(composed_photo())
    photo_call(page, lambda: page.get_by_test_id("photo-input").set_input_files(str(path)))
    expect(page.get_by_test_id("photo-face")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shown = page.get_by_test_id("photo-image").bounding_box()
    assert shown is not None and shown["x"] >= 0 and shown["x"] + shown["width"] <= 390
    assert abs(shown["width"] / shown["height"] - WIDTH / HEIGHT) < 0.01  # not distorted
    for i in range(2):
        box = page.get_by_test_id("photo-face").nth(i).bounding_box()
        assert box is not None
        assert shown["x"] <= box["x"] and box["x"] + box["width"] <= shown["x"] + shown["width"]
        assert shown["y"] <= box["y"] and box["y"] + box["height"] <= shown["y"] + shown["height"]
    for testid in ("photo-download", "photo-close", "photo-button"):
        box = page.get_by_test_id(testid).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, testid
    screenshot(page, "photo-390")
