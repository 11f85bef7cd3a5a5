"""Upload a photo: the page's file input and drop target POST /encode (multipart), show the
photo beside its reconstruction with the quality figures, and make the encoded latent the
current face, edited like any other. Headless Chromium against the real server (loopback)."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from test_web_editor import call, expect, open_editor, prob, row
from web_helpers import web_app

from api.settings import Settings
from tlgan.pipeline import Pipeline
from tlgan.testing import TINY_ATTRIBUTES, serve

pytestmark = pytest.mark.browser

Page = Any
NewPage = Callable[..., tuple[Any, Any]]

#: What the page sends besides the photo (no ``steps``: the service's default).
PAGE_FIELDS = {"format": "png", "size": "384", "with_features": "true", "adapter": "false"}
BAD_IMAGE = "image: not a JPEG, PNG or WebP image"


def photo_bytes(fmt: str = "JPEG", size: tuple[int, int] = (120, 90), seed: int = 0,
                noise: float = 0.0) -> bytes:
    """A non-square face-ish picture (a light oval on a dark ground) in ``fmt``."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    oval = (((x - w / 2) / (0.3 * w)) ** 2 + ((y - h / 2) / (0.42 * h)) ** 2) < 1.0
    rgb = np.empty((h, w, 3), np.float32)
    rgb[...] = (40.0, 50.0 + 40.0 * seed, 70.0)
    rgb[oval] = (225.0, 180.0, 150.0 - 30.0 * seed)
    rgb[(np.abs(y - 0.4 * h) < 0.03 * h) & oval] = (30.0, 30.0, 30.0)  # eyes' line at 40%
    if noise:
        rgb += np.random.default_rng(seed).normal(0.0, noise, rgb.shape)
    buf = io.BytesIO()
    options = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, fmt, **options)
    return buf.getvalue()


def multipart_fields(request: Any) -> dict[str, tuple[str | None, bytes]] | None:
    """The parts of a multipart request: {name: (filename or None, bytes)}; None when
    Chromium does not report the request's data (a body made only of in-memory blobs)."""
    ctype = request.headers["content-type"]
    assert ctype.startswith("multipart/form-data"), ctype
    boundary = re.search(r"boundary=(\S+)", ctype)
    assert boundary is not None
    body: bytes | None = request.post_data_buffer
    if body is None:
        return None
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary.group(1).encode())[1:-1]:
        head, _, data = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = head.decode()
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        assert name is not None
        parts[name.group(1)] = (filename.group(1) if filename else None,
                                data.removesuffix(b"\r\n"))
    return parts


def encode_directly(url: str, data: bytes, name: str, mime: str,
                    fields: dict[str, str]) -> httpx.Response:
    """POST /encode without the page, with the given form fields."""
    return httpx.post(f"{url}/encode", files={"image": (name, data, mime)}, data=fields,
                      timeout=60)


def expect_encode(page: Page, action: Callable[[], None]) -> Any:
    """Do ``action`` and return the response of the POST /encode it causes."""
    with page.expect_response(lambda r: r.url.endswith("/encode")
                              and r.request.method == "POST") as info:
        action()
    return info.value


def check_sent(resp: Any, data: bytes, name: str) -> dict[str, str]:
    """The page's /encode request: multipart, the photo's part and the page's form fields
    (no ``steps``: the service's default was used); returns the fields, to send the same
    directly. Chromium leaves a file's bytes (sometimes the whole body) out of the request
    data it reports: the same latent from a direct request with ``data`` shows they were
    sent."""
    assert resp.json()["steps"] == Settings().encode_steps
    parts = multipart_fields(resp.request)
    if parts is not None:
        assert parts["image"][0] == name and parts["image"][1] in (b"", data)
        fields = {k: v.decode() for k, (fname, v) in parts.items() if k != "image"}
        assert fields == PAGE_FIELDS
    return dict(PAGE_FIELDS)


def check_shown(page: Page, answer: dict[str, Any], label: str) -> None:
    """The photo beside the reconstruction, the quality figures, the encoded face current."""
    src = "data:image/png;base64," + answer["image"]
    expect(page.get_by_test_id("face-image")).to_have_attribute("src", src)
    expect(page.get_by_test_id("face-label")).to_have_text(label)
    result = page.get_by_test_id("upload-result")
    expect(result).to_be_visible()
    expect(result.locator("figcaption")).to_have_text(["Your photo", "Reconstruction"])
    photo = page.get_by_test_id("upload-photo")
    expect(photo).to_have_attribute("src", re.compile("^blob:"))
    photo.evaluate("el => el.decode()")  # the object URL loads (CSP allows blob: images)
    assert photo.evaluate("el => el.naturalWidth > 0 && getComputedStyle(el).objectFit") == "cover"
    box = photo.bounding_box()
    assert box is not None and abs(box["width"] - box["height"]) < 1  # centre-cropped square
    expect(page.get_by_test_id("upload-reconstruction")).to_have_attribute("src", src)
    q = answer["quality"]
    assert isinstance(q["embedding_cosine"], float) and isinstance(q["label_agreement"], float)
    expect(page.get_by_test_id("quality-psnr")).to_have_text(f"{q['psnr']:.1f} dB")
    expect(page.get_by_test_id("quality-cosine")).to_have_text(f"{q['embedding_cosine']:.3f}")
    expect(page.get_by_test_id("quality-agreement")).to_have_text(
        f"{round(q['label_agreement'] * 100)}%")
    expect(page.get_by_test_id("upload-quality")).to_contain_text("PSNR")
    expect(page.get_by_test_id("upload-steps")).to_contain_text(
        f"{answer['steps']} refinement steps")
    for name in TINY_ATTRIBUTES:
        expect(prob(page, name)).to_have_text(f"{answer['features'][name]:.2f}")


def drag_transfer(page: Page, data: bytes, name: str, mime: str) -> Any:
    """A DataTransfer holding one file, as the browser builds for a dragged file."""
    return page.evaluate_handle(
        """([b64, name, mime]) => {
             const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
             const dt = new DataTransfer();
             dt.items.add(new File([bytes], name, { type: mime }));
             return dt; }""",
        [base64.b64encode(data).decode(), name, mime])


@pytest.fixture(scope="module")
def small_upload_url(tiny_pipeline: Pipeline) -> Iterator[str]:
    """The page's app with a 20 kB upload limit."""
    with serve(web_app(tiny_pipeline, max_upload_bytes=20_000)) as url:
        yield url


def test_upload_a_photo_then_edit_it(server_url: str, new_page: NewPage, tmp_path: Path,
                                     screenshot: Callable[[Any, str], None]) -> None:
    page, _ = new_page(server_url, permissions=["clipboard-read", "clipboard-write"])
    open_editor(page)
    expect(page.get_by_test_id("upload-result")).to_be_hidden()
    upload = page.get_by_test_id("upload-input")
    assert upload.get_attribute("accept") == "image/jpeg,image/png,image/webp"
    expect(page.get_by_test_id("upload-button")).to_contain_text("Upload a photo")
    expect(page.get_by_test_id("upload-hint")).to_contain_text("CelebA")
    expect(page.get_by_test_id("upload-hint")).to_contain_text("centre-cropped")
    data = photo_bytes()
    path = tmp_path / "my face.jpg"
    path.write_bytes(data)

    # Hold the request: the face shows the busy state while the photo is encoded.
    held: list[Any] = []
    page.route("**/encode", lambda route: held.append(route))
    upload.set_input_files(str(path))
    frame = page.get_by_test_id("face-frame")
    expect(frame).to_have_attribute("aria-busy", "true")
    expect(frame).to_have_class(re.compile(r"\bbusy\b"))
    expect(page.get_by_test_id("notice")).to_have_text("Encoding my face.jpg…")
    while not held:
        page.wait_for_timeout(20)
    resp = expect_encode(page, held[0].continue_)
    page.unroute("**/encode")
    assert resp.status == 200
    assert resp.request.headers.get("x-api-key") is None  # none saved on this page
    answer = resp.json()
    fields = check_sent(resp, data, "my face.jpg")

    direct = encode_directly(server_url, data, "my face.jpg", "image/jpeg", fields)
    assert direct.status_code == 200
    expected = direct.json()
    assert answer["latent"] == expected["latent"]  # deterministic for a photo and steps
    check_shown(page, answer, "photo my face.jpg")
    expect(frame).to_have_attribute("aria-busy", "false")
    expect(page.get_by_test_id("error")).to_be_hidden()
    screenshot(page, "upload")

    # The current latent is the encoded one.
    page.get_by_test_id("copy-latent").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Latent copied")
    assert json.loads(page.evaluate("navigator.clipboard.readText()")) == expected["latent"]

    # Edit it like any face: the move is relative to the encoded latent.
    body, edit = call(page, "edit", row(page, "Smiling").get_by_test_id("axis-plus").click)
    assert body["latent"] == expected["latent"]
    # rendered as encoded: with the adapter /encode gave (none: the page asks for none)
    assert body.get("adapter") == expected.get("adapter")
    assert body["moves"] == {"Smiling": 0.5} and body["locked"] == []
    edited = edit.json()
    assert edited["image"] != answer["image"]
    expect(page.get_by_test_id("face-image")).to_have_attribute(
        "src", "data:image/png;base64," + edited["image"])
    expect(prob(page, "Smiling")).to_have_text(f"{edited['features']['Smiling']:.2f}")
    expect(page.get_by_test_id("face-label")).to_have_text("photo my face.jpg · Smiling +0.5")
    # The pair stays: the reconstruction is still the unedited one.
    expect(page.get_by_test_id("upload-result")).to_be_visible()
    expect(page.get_by_test_id("upload-reconstruction")).to_have_attribute(
        "src", "data:image/png;base64," + answer["image"])

    # A lock applies the edits so far: the base becomes the edited latent.
    lock = row(page, "Male").get_by_test_id("axis-lock")
    with page.expect_response(lambda r: r.url.endswith("/edit")):
        lock.click()
    expect(lock).to_have_attribute("aria-pressed", "true")
    body, _ = call(page, "edit", row(page, "Eyeglasses").get_by_test_id("axis-plus").click)
    assert body["latent"] == edited["latent"] and body["locked"] == ["Male"]

    # Reset goes back to the encoded face.
    body, _ = call(page, "edit", page.get_by_test_id("reset-edits").click)
    assert body["latent"] == expected["latent"] and body["moves"] == {}
    expect(page.get_by_test_id("face-image")).to_have_attribute(
        "src", "data:image/png;base64," + answer["image"])

    # Keep it as A for blending; a random face then hides the pair (and frees the photo).
    page.get_by_test_id("keep-a").click()
    expect(page.get_by_test_id("mix-a-image")).to_have_attribute(
        "src", "data:image/png;base64," + answer["image"])
    call(page, "generate", page.get_by_test_id("random-face").click)
    expect(page.get_by_test_id("upload-result")).to_be_hidden()
    assert page.get_by_test_id("upload-photo").get_attribute("src") is None
    expect(page.get_by_test_id("face-label")).to_have_text(re.compile(r"^seed \d+"))


def test_drop_a_photo_on_the_face(server_url: str, new_page: NewPage,
                                  screenshot: Callable[[Any, str], None]) -> None:
    page, probe = new_page(server_url)
    open_editor(page)
    data = photo_bytes("PNG", size=(80, 110), seed=1)
    transfer = drag_transfer(page, data, "dropped.png", "image/png")
    stage = page.get_by_test_id("stage")
    hint = page.get_by_test_id("drop-hint")
    frame = '[data-testid="face-frame"]'

    # Dragging a file over the face highlights the panel; leaving removes the highlight.
    page.dispatch_event(frame, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(frame, "dragover", {"dataTransfer": transfer})
    expect(stage).to_have_class(re.compile(r"\bdragover\b"))
    expect(hint).to_have_css("opacity", "1")
    screenshot(page, "upload-drag")
    page.dispatch_event(frame, "dragleave", {"dataTransfer": transfer})
    expect(stage).not_to_have_class(re.compile(r"\bdragover\b"))
    expect(hint).to_have_css("opacity", "0")

    # Dropping it encodes it.
    page.dispatch_event(frame, "dragenter", {"dataTransfer": transfer})
    expect(stage).to_have_class(re.compile(r"\bdragover\b"))
    resp = expect_encode(page, lambda: page.dispatch_event(
        frame, "drop", {"dataTransfer": transfer}))
    assert resp.status == 200
    expect(stage).not_to_have_class(re.compile(r"\bdragover\b"))
    answer = resp.json()
    fields = check_sent(resp, data, "dropped.png")
    expected = encode_directly(server_url, data, "dropped.png", "image/png", fields).json()
    assert answer["latent"] == expected["latent"]
    check_shown(page, answer, "photo dropped.png")
    body, _ = call(page, "edit", row(page, "Young").get_by_test_id("axis-minus").click)
    assert body["latent"] == expected["latent"] and body["moves"] == {"Young": -0.5}

    # Dropped outside the panel, the file is refused (the page stays) and nothing is sent.
    urls = len([u for u in probe.urls if u.endswith("/encode")])
    canceled = page.evaluate(
        """(dt) => !document.querySelector('[data-testid="axes"]').dispatchEvent(
               new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }))""",
        transfer)
    assert canceled
    page.wait_for_timeout(200)
    assert len([u for u in probe.urls if u.endswith("/encode")]) == urls


def test_bad_uploads_show_the_services_message(server_url: str, new_page: NewPage,
                                               tmp_path: Path,
                                               screenshot: Callable[[Any, str], None]) -> None:
    page, _ = new_page(server_url)
    open_editor(page)
    face = page.get_by_test_id("face-image").get_attribute("src")
    error = page.get_by_test_id("error")

    # Plain text through the file input (a .txt: the accept list is only a hint).
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")
    resp = expect_encode(page, lambda: page.get_by_test_id("upload-input").set_input_files(
        str(notes)))
    assert resp.status == 422
    detail = resp.json()["detail"]
    assert detail.startswith(BAD_IMAGE)
    expect(error).to_be_visible()
    expect(page.get_by_test_id("error-text")).to_have_text(
        f"Upload a photo failed (HTTP 422): {detail}")
    expect(page.get_by_test_id("face-image")).to_have_attribute("src", face or "")
    expect(page.get_by_test_id("upload-result")).to_be_hidden()
    expect(page.get_by_test_id("notice")).to_have_text("")
    expect(page.get_by_test_id("face-frame")).to_have_attribute("aria-busy", "false")
    screenshot(page, "upload-error")

    # Text renamed .jpg, dropped: the same answer.
    page.get_by_test_id("error-dismiss").click()
    transfer = drag_transfer(page, b"hello, I am text", "renamed.jpg", "image/jpeg")
    resp = expect_encode(page, lambda: page.dispatch_event(
        '[data-testid="face-frame"]', "drop", {"dataTransfer": transfer}))
    assert resp.status == 422
    expect(error).to_contain_text("HTTP 422")
    expect(error).to_contain_text(BAD_IMAGE)

    # Nothing broke: a photo encodes afterwards and clears the error.
    good = tmp_path / "good.webp"
    good.write_bytes(photo_bytes("WEBP"))
    resp = expect_encode(page, lambda: page.get_by_test_id("upload-input").set_input_files(
        str(good)))
    assert resp.status == 200
    check_shown(page, resp.json(), "photo good.webp")
    expect(error).to_be_hidden()


@pytest.mark.parametrize("megabytes", [0.2, 3])
def test_too_big_upload_shows_the_limit(small_upload_url: str, new_page: NewPage,
                                        tmp_path: Path, megabytes: float) -> None:
    page, _ = new_page(small_upload_url)
    open_editor(page)
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * int(megabytes * 1_000_000))
    page.get_by_test_id("upload-input").set_input_files(str(big))
    expect(page.get_by_test_id("error-text")).to_have_text(
        "Upload a photo failed (HTTP 413): image: request body exceeds the limit of 20000 bytes")
    expect(page.get_by_test_id("upload-result")).to_be_hidden()
    # A photo under the limit still encodes.
    small = tmp_path / "small.jpg"
    small.write_bytes(photo_bytes())
    assert small.stat().st_size < 20_000
    resp = expect_encode(page, lambda: page.get_by_test_id("upload-input").set_input_files(
        str(small)))
    assert resp.status == 200
    check_shown(page, resp.json(), "photo small.jpg")
    expect(page.get_by_test_id("error")).to_be_hidden()


def test_upload_sends_the_api_key(tiny_pipeline: Pipeline, new_page: NewPage,
                                  tmp_path: Path) -> None:
    with serve(web_app(tiny_pipeline, api_key="s3cret")) as url:
        page, _ = new_page(url)
        page.add_init_script("localStorage.setItem('tlgan.apiKey', 's3cret')")
        open_editor(page)
        path = tmp_path / "face.jpg"
        path.write_bytes(photo_bytes())
        resp = expect_encode(page, lambda: page.get_by_test_id("upload-input").set_input_files(
            str(path)))
        assert resp.status == 200
        assert resp.request.headers.get("x-api-key") == "s3cret"
        check_shown(page, resp.json(), "photo face.jpg")


@pytest.mark.parametrize("width", [1280, 390])
def test_photo_and_reconstruction_fit_desktop_and_phone_widths(
        server_url: str, new_page: NewPage, tmp_path: Path, width: int,
        screenshot: Callable[[Any, str], None]) -> None:
    page, _ = new_page(server_url, viewport={"width": width, "height": 900})
    open_editor(page)
    name = "a-very-long-photo-file-name-without-any-spaces-at-all-1234567890.jpg"
    path = tmp_path / name
    path.write_bytes(photo_bytes(size=(200, 90)))
    resp = expect_encode(page, lambda: page.get_by_test_id("upload-input").set_input_files(
        str(path)))
    check_shown(page, resp.json(), f"photo {name[:31]}…")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    photo = page.get_by_test_id("upload-photo").bounding_box()
    rec = page.get_by_test_id("upload-reconstruction").bounding_box()
    assert photo is not None and rec is not None
    # side by side, the same size
    assert abs(photo["y"] - rec["y"]) < 1 and photo["x"] + photo["width"] <= rec["x"]
    assert photo["x"] >= 0 and rec["x"] + rec["width"] <= width
    assert abs(photo["width"] - rec["width"]) < 1 and rec["width"] >= 100
    for testid in ("upload-button", "upload-hint", "upload-quality"):
        box = page.get_by_test_id(testid).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, testid
    screenshot(page, f"upload-{width}")
