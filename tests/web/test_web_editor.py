"""End to end: the face editor page in headless Chromium against the real server (loopback)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from web_helpers import web_app

from tlgan.pipeline import Pipeline
from tlgan.testing import TINY_ATTRIBUTES, TINY_LATENT, serve

pytestmark = pytest.mark.browser

Page = Any
NewPage = Callable[..., tuple[Any, Any]]


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


def row(page: Page, axis: str) -> Any:
    return page.locator(f'[data-testid="axis-row"][data-axis="{axis}"]')


def prob(page: Page, axis: str) -> Any:
    return row(page, axis).get_by_test_id("axis-prob-value")


def open_editor(page: Page) -> None:
    """Load the page and wait for its first (random) face."""
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    img = page.get_by_test_id("face-image")
    expect(img).to_have_attribute("src", re.compile("^data:image/png"))
    expect(page.get_by_test_id("axis-row")).to_have_count(len(TINY_ATTRIBUTES))


def call(page: Page, path: str, action: Callable[[], None]) -> tuple[dict[str, Any], Any]:
    """Do ``action`` and return (request body, response) of the POST /``path`` it causes."""
    with page.expect_response(lambda r: r.url.endswith("/" + path)
                              and r.request.method == "POST") as info:
        action()
    resp = info.value
    return resp.request.post_data_json, resp


def generate(page: Page, seed: int) -> dict[str, Any]:
    """Generate the face of ``seed`` with the seed field; return the API's face."""
    page.get_by_test_id("seed-input").fill(str(seed))
    body, resp = call(page, "generate", page.get_by_test_id("generate").click)
    assert body["seed"] == seed and resp.status == 200
    face: dict[str, Any] = resp.json()["faces"][0]
    expect(page.get_by_test_id("face-label")).to_have_text(f"seed {seed}")
    expect(page.get_by_test_id("face-image")).to_have_attribute(
        "src", "data:image/png;base64," + face["image"])
    return face


def set_range(page: Page, testid: str, value: float) -> None:
    """Set a slider as a user's release would (input + change events)."""
    page.get_by_test_id(testid).evaluate(
        """(el, v) => { el.value = String(v);
                        el.dispatchEvent(new Event('input', {bubbles: true}));
                        el.dispatchEvent(new Event('change', {bubbles: true})); }""", value)


def test_generate_and_move_along_an_axis(server_url: str, new_page: NewPage,
                                         screenshot: Callable[[Any, str], None]) -> None:
    page, _ = new_page(server_url)
    open_editor(page)
    face = generate(page, 1)
    for name in TINY_ATTRIBUTES:
        expect(prob(page, name)).to_have_text(f"{face['features'][name]:.2f}")
    src0 = page.get_by_test_id("face-image").get_attribute("src")
    smiling0 = float(prob(page, "Smiling").get_attribute("data-value"))

    body, resp = call(page, "edit", row(page, "Smiling").get_by_test_id("axis-plus").click)
    assert body["latent"] == face["latent"]
    assert body["moves"] == {"Smiling": 0.5} and body["locked"] == []
    edited = resp.json()
    expect(page.get_by_test_id("face-image")).to_have_attribute(
        "src", "data:image/png;base64," + edited["image"])
    assert edited["image"] != face["image"]
    expect(prob(page, "Smiling")).to_have_text(f"{edited['features']['Smiling']:.2f}")
    expect(prob(page, "Smiling")).not_to_have_attribute("data-value", repr(smiling0))
    assert float(prob(page, "Smiling").get_attribute("data-value")) != smiling0
    expect(row(page, "Smiling").get_by_test_id("axis-value")).to_have_text("+0.5")
    expect(page.get_by_test_id("download")).to_have_attribute("href", re.compile("^data:image/png"))
    screenshot(page, "editor")

    # Sliders are absolute: the slider back to 0 sends no move and renders the face again.
    body, _ = call(page, "edit", row(page, "Smiling").get_by_test_id("axis-minus").click)
    assert body["moves"] == {} and body["latent"] == face["latent"]
    expect(page.get_by_test_id("face-image")).to_have_attribute("src", src0)

    # The slider moves too (debounced): one request with its value.
    slider = row(page, "Eyeglasses").get_by_test_id("axis-slider")
    body, _ = call(page, "edit", lambda: slider.evaluate(
        "el => { el.value = '-1.5'; el.dispatchEvent(new Event('input', {bubbles: true})); }"))
    assert body["moves"] == {"Eyeglasses": -1.5}


def test_locked_feature_stays_put(server_url: str, new_page: NewPage,
                                  tiny_pipeline: Pipeline) -> None:
    page, _ = new_page(server_url)
    open_editor(page)
    face = generate(page, 1)
    lock = row(page, "Smiling").get_by_test_id("axis-lock")
    lock.click()
    expect(lock).to_have_attribute("aria-pressed", "true")
    expect(row(page, "Smiling").get_by_test_id("axis-plus")).to_be_disabled()

    body, resp = call(page, "edit", row(page, "Eyeglasses").get_by_test_id("axis-plus").click)
    assert body["locked"] == ["Smiling"] and body["moves"] == {"Eyeglasses": 0.5}
    moved = np.asarray(resp.json()["latent"]) - np.asarray(face["latent"])
    smiling = tiny_pipeline.bundle.direction("Smiling")
    eyeglasses = tiny_pipeline.bundle.direction("Eyeglasses")
    # Unlocked, this move would change the Smiling component; locked, it does not.
    assert abs(0.5 * float(eyeglasses @ smiling)) > 1e-2
    assert abs(float(moved @ smiling)) < 1e-4
    assert np.linalg.norm(moved) > 0.1

    # Unlocking keeps the face (the edits so far become the new base).
    src = page.get_by_test_id("face-image").get_attribute("src")
    with page.expect_response(lambda r: r.url.endswith("/edit")):
        lock.click()
    expect(lock).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_test_id("face-image")).to_have_attribute("src", src)
    expect(row(page, "Eyeglasses").get_by_test_id("axis-value")).to_have_text("±0.0")


def test_feature_conditioned_generation_names_unmet(server_url: str, new_page: NewPage,
                                                    screenshot: Callable[[Any, str], None]
                                                    ) -> None:
    page, _ = new_page(server_url)
    open_editor(page)
    page.get_by_test_id("cond-details").locator("summary").click()
    wants = {"Eyeglasses": "yes", "Male": "no", "Smiling": "yes", "Young": "no"}
    for name, want in wants.items():
        page.locator(f'[data-testid="cond-select"][data-axis="{name}"]').select_option(want)
    page.get_by_test_id("seed-input").fill("1")
    body, resp = call(page, "generate", page.get_by_test_id("generate-features").click)
    assert body["features"] == {"Eyeglasses": 0.9, "Male": 0.1, "Smiling": 0.9, "Young": 0.1}
    unmet = resp.json()["faces"][0]["unmet"]
    assert unmet, "these targets are out of the tiny model's reach for seed 1"
    message = page.get_by_test_id("unmet")
    expect(message).to_be_visible()
    expect(message).to_contain_text("Could not meet: " + ", ".join(unmet))
    screenshot(page, "features")


def test_mix_two_faces(server_url: str, new_page: NewPage,
                       screenshot: Callable[[Any, str], None]) -> None:
    page, _ = new_page(server_url)
    open_editor(page)
    face_a = generate(page, 1)
    page.get_by_test_id("keep-a").click()
    face_b = generate(page, 2)
    page.get_by_test_id("keep-b").click()
    expect(page.get_by_test_id("mix-ratio")).to_be_enabled()

    body, resp = call(page, "interpolate", lambda: set_range(page, "mix-ratio", 0.4))
    assert body["ratio"] == 0.4 and body["method"] == "slerp"
    assert body["latent_a"] == face_a["latent"] and body["latent_b"] == face_b["latent"]
    blend = resp.json()["faces"][0]
    assert blend["image"] not in (face_a["image"], face_b["image"])
    img = page.get_by_test_id("face-image")
    expect(img).to_have_attribute("src", "data:image/png;base64," + blend["image"])
    expect(page.get_by_test_id("face-label")).to_have_text("blend A→B 40%")
    expect(prob(page, "Male")).to_have_text(f"{blend['features']['Male']:.2f}")
    screenshot(page, "mixing")

    call(page, "interpolate", lambda: set_range(page, "mix-ratio", 1))
    expect(img).to_have_attribute("src", "data:image/png;base64," + face_b["image"])


def test_faces_are_asked_for_at_their_display_size(server_url: str, new_page: NewPage) -> None:
    """The face is shown at 384 px: generate, edit and mix ask for 384 px faces (which the
    server's upscaler sharpens) instead of stretching 64 px ones."""
    import base64
    import io

    from PIL import Image

    page, _ = new_page(server_url)
    open_editor(page)
    page.get_by_test_id("seed-input").fill("3")
    body, resp = call(page, "generate", page.get_by_test_id("generate").click)
    assert body["size"] == 384
    with Image.open(io.BytesIO(base64.b64decode(resp.json()["faces"][0]["image"]))) as im:
        assert im.size == (384, 384)
    page.get_by_test_id("keep-a").click()
    body, _ = call(page, "edit", row(page, "Smiling").get_by_test_id("axis-plus").click)
    assert body["size"] == 384
    page.get_by_test_id("keep-b").click()
    body, _ = call(page, "interpolate", lambda: set_range(page, "mix-ratio", 0.5))
    assert body["size"] == 384


def test_api_errors_are_shown_and_latents_round_trip(
        server_url: str, new_page: NewPage, screenshot: Callable[[Any, str], None]) -> None:
    page, _ = new_page(server_url, permissions=["clipboard-read", "clipboard-write"])
    open_editor(page)
    face = generate(page, 3)
    src = page.get_by_test_id("face-image").get_attribute("src")
    error = page.get_by_test_id("error")

    page.get_by_test_id("latent-details").locator("summary").click()
    page.get_by_test_id("latent-text").fill("[1, 2, 3]")
    _, resp = call(page, "edit", page.get_by_test_id("paste-latent").click)
    assert resp.status == 422
    expect(error).to_be_visible()
    expect(error).to_contain_text("HTTP 422")
    expect(error).to_contain_text(f"latent: expected {TINY_LATENT} numbers")
    expect(page.get_by_test_id("face-image")).to_have_attribute("src", src)
    screenshot(page, "error")

    page.get_by_test_id("latent-text").fill("[1, 2,")
    page.get_by_test_id("paste-latent").click()
    expect(error).to_contain_text("latent: not valid JSON")

    # Copy the face's latent, paste it back: the same face.
    page.get_by_test_id("copy-latent").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Latent copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert np.allclose(np.asarray(json.loads(copied)), face["latent"])
    page.get_by_test_id("random-face").click()
    expect(page.get_by_test_id("face-image")).not_to_have_attribute("src", src)
    page.get_by_test_id("latent-text").fill(copied)
    body, resp = call(page, "edit", page.get_by_test_id("paste-latent").click)
    assert resp.status == 200 and body["moves"] == {}
    expect(page.get_by_test_id("face-image")).to_have_attribute("src", src)
    expect(error).to_be_hidden()


def test_api_key_is_asked_for_and_sent(tiny_pipeline: Pipeline, new_page: NewPage) -> None:
    with serve(web_app(tiny_pipeline, api_key="s3cret")) as url:
        page, _ = new_page(url)
        page.goto("/")
        expect(page.get_by_test_id("error")).to_contain_text("HTTP 401")
        expect(page.get_by_test_id("apikey-form")).to_be_visible()
        page.get_by_test_id("apikey-input").fill("s3cret")
        with page.expect_request(lambda r: r.url.endswith("/generate")) as info:
            page.get_by_test_id("apikey-save").click()
        assert info.value.headers.get("x-api-key") == "s3cret"
        expect(page.get_by_test_id("face-image")).to_have_attribute("src", re.compile("^data:"))
        expect(page.get_by_test_id("error")).to_be_hidden()
        assert page.evaluate("localStorage.getItem('tlgan.apiKey')") == "s3cret"


@pytest.mark.parametrize("width", [1280, 390])
def test_layout_fits_desktop_and_phone_widths_and_long_seeds(server_url: str,
                                                             new_page: NewPage,
                                                             width: int) -> None:
    page, _ = new_page(server_url, viewport={"width": width, "height": 900})
    open_editor(page)
    generate(page, 123456789)
    seed = page.get_by_test_id("seed-input")
    expect(seed).to_have_value("123456789")
    assert seed.evaluate("el => el.scrollWidth <= el.clientWidth")  # no digit cut off
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for testid in ("face-image", "random-face", "upload-button", "upload-hint"):
        box = page.get_by_test_id(testid).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, testid


def test_axes_that_drag_a_reference_say_so(new_page: NewPage, tiny_pipeline: Pipeline) -> None:
    assert tiny_pipeline.bundle is not None
    judged = tiny_pipeline.bundle.with_stats({
        "Smiling": {"judge_drag_Male": 0.25, "judge_drag_Young": -0.02},
        "Eyeglasses": {"judge_drag_Male": 0.05, "judge_drag_Young": 0.04},
    })
    pipeline = Pipeline(generator=tiny_pipeline.generator, extractor=tiny_pipeline.extractor,
                        bundle=judged)
    with serve(web_app(pipeline)) as url:
        page, _ = new_page(url)
        open_editor(page)
        badge = row(page, "Smiling").get_by_test_id("axis-drag")
        expect(badge).to_have_text("Male +0.25")
        expect(badge).to_have_attribute("title", re.compile(r"P\(Male\) by \+0\.25"))
        expect(row(page, "Eyeglasses").get_by_test_id("axis-drag")).to_have_count(0)
        title = row(page, "Smiling").locator(".axis-name").get_attribute("title") or ""
        assert "P(Male) +0.25, P(Young) −0.02" in title


def test_locality_toggle_turns_local_edits_off(server_url: str, new_page: NewPage) -> None:
    page, _ = new_page(server_url)
    open_editor(page)
    generate(page, 1)
    toggle = page.get_by_test_id("locality-toggle")
    expect(toggle).to_be_checked()
    body, resp = call(page, "edit", row(page, "Smiling").get_by_test_id("axis-plus").click)
    assert "locality" not in body  # the server's default
    assert resp.json()["locality"] is False  # the tiny bundle ships no masks
    body, _ = call(page, "edit", toggle.uncheck)  # turning it off edits again, globally
    assert body["locality"] is False and body["moves"] == {"Smiling": 0.5}
    body, _ = call(page, "edit", row(page, "Smiling").get_by_test_id("axis-plus").click)
    assert body["locality"] is False and body["moves"] == {"Smiling": 1.0}


def test_the_page_says_when_a_move_leaves_the_realistic_region(
        new_page: NewPage, tiny_pipeline: Pipeline) -> None:
    import dataclasses

    from tlgan.testing import tiny_critic

    critic = dataclasses.replace(tiny_pipeline,
                                 critic=tiny_critic(tiny_pipeline.generator, gain=30.0))
    with serve(web_app(critic)) as url:
        page, _ = new_page(url)
        open_editor(page)
        generate(page, 1)
        note = page.get_by_test_id("realism-note")
        expect(note).to_be_hidden()
        body, resp = call(page, "edit", row(page, "Smiling").get_by_test_id("axis-plus").click)
        real = resp.json()["realism"]
        # the server's default: checked, not held
        assert "realism" not in body and real is not None and not real["hold"]
        if real["held"]:
            expect(note).to_be_hidden()

        # an answer saying the face could not be held shows the note near the sliders
        def unheld(route: Any) -> None:
            answer = route.fetch()
            data = answer.json()
            data["realism"] = {"start": 1.0, "moved": -2.0, "end": -1.25, "held": False,
                               "hold": True, "tolerance": 0.5}
            route.fulfill(response=answer, json=data)

        page.route("**/edit", unheld)
        call(page, "edit", row(page, "Smiling").get_by_test_id("axis-plus").click)
        expect(note).to_be_visible()
        expect(note).to_contain_text("leaves the realistic region")
        expect(note).to_contain_text("2.25 below the start face (more than 0.5) even after")
        page.unroute("**/edit")
        # back at the start face (no move: nothing held) the note goes
        call(page, "edit", row(page, "Smiling").get_by_test_id("axis-minus").click)
        body, resp = call(page, "edit", row(page, "Smiling").get_by_test_id("axis-minus").click)
        assert body["moves"] == {} and resp.json()["realism"] is None
        expect(note).to_be_hidden()
