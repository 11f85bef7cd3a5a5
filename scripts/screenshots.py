"""Retake the web editor's screenshots (README, docs/api.md) on the shipped default models.

    .venv/bin/python scripts/screenshots.py --out docs/img        # needs Debian's chromium

Serves the app on the default models on a free loopback port, drives the page in headless Chromium
(Playwright) and writes editor.png (seed 7, Male locked, Smiling +1.5, Eyeglasses +2.5),
features.png (feature-conditioned generation), editor-390.png (a 390 px wide phone),
upload.png (a CelebA test photo uploaded, then Smiling +1.5 with Male locked) and photo.png
(*Edit a whole photo*: that photo enlarged on a bigger background, Smiling +1.5; the page's
round trip of each slider edit is printed).
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--photo", type=Path,
                    default=REPO.parent / "shared/data/celeba-subset/img_align_celeba/184428.jpg",
                    help="The photo uploaded for upload.png (a CelebA test-partition crop).")
    args = ap.parse_args()
    chromium = os.environ.get("TLGAN_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("error: chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    from api.app import create_app
    from api.settings import load_settings
    from tlgan.testing import serve

    args.out.mkdir(parents=True, exist_ok=True)
    with serve(create_app(load_settings())) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, base_url=url)
        page.goto("/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)

        def row(axis: str):  # type: ignore[no-untyped-def]
            return page.locator(f'[data-testid="axis-row"][data-axis="{axis}"]')

        def edit(action):  # type: ignore[no-untyped-def]
            with page.expect_response(lambda r: r.url.endswith("/edit")):
                action()

        page.get_by_test_id("seed-input").fill(str(args.seed))
        with page.expect_response(lambda r: r.url.endswith("/generate")):
            page.get_by_test_id("generate").click()
        row("Male").get_by_test_id("axis-lock").click()
        for _ in range(3):
            edit(row("Smiling").get_by_test_id("axis-plus").click)
        for _ in range(5):
            edit(row("Eyeglasses").get_by_test_id("axis-plus").click)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out / "editor.png"))
        phone = browser.new_page(viewport={"width": 390, "height": 844}, base_url=url)
        phone.goto("/")
        expect(phone.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
        phone.get_by_test_id("seed-input").fill("123456789")
        with phone.expect_response(lambda r: r.url.endswith("/generate")):
            phone.get_by_test_id("generate").click()
        phone.wait_for_timeout(500)
        phone.screenshot(path=str(args.out / "editor-390.png"))
        page.get_by_test_id("cond-details").locator("summary").click()
        for axis, want in (("Smiling", "yes"), ("Eyeglasses", "yes"), ("Male", "no")):
            page.locator(f'[data-testid="cond-select"][data-axis="{axis}"]').select_option(want)
        page.get_by_test_id("seed-input").fill(str(args.seed))
        with page.expect_response(lambda r: r.url.endswith("/generate"), timeout=120_000):
            page.get_by_test_id("generate-features").click()
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out / "features.png"))
        upload = browser.new_page(viewport={"width": 1280, "height": 900}, base_url=url)
        upload.goto("/")
        expect(upload.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
        with upload.expect_response(lambda r: r.url.endswith("/encode"), timeout=120_000):
            upload.get_by_test_id("upload-input").set_input_files(str(args.photo))
        expect(upload.get_by_test_id("upload-result")).to_be_visible()
        page = upload
        row("Male").get_by_test_id("axis-lock").click()
        for _ in range(3):
            edit(row("Smiling").get_by_test_id("axis-plus").click)
        upload.evaluate("window.scrollTo(0, 0)")
        upload.wait_for_timeout(500)
        # the face panel: the face, the photo beside its reconstruction, the quality
        upload.get_by_test_id("stage").screenshot(path=str(args.out / "upload.png"))
        whole_photo(browser, url, args.photo, args.out)
        browser.close()
    print(f"wrote editor.png, editor-390.png, features.png, upload.png and photo.png to {args.out}")


def composed(photo: Path, out: Path) -> Path:
    """``photo`` (a face crop) enlarged 5x on a 1600 x 1000 background (a gradient between
    two of its corners' colours): a photo in which the face is one part; written as JPEG."""
    import numpy as np
    from PIL import Image

    with Image.open(photo) as img:
        face = img.convert("RGB")
    corners = np.asarray(face, np.float32)
    left, right = corners[:8, :8].mean(axis=(0, 1)), corners[-8:, -8:].mean(axis=(0, 1))
    t = np.linspace(0.0, 1.0, 1600, dtype=np.float32)[None, :, None]
    rows = np.broadcast_to(left * (1 - t) + right * t, (1000, 1600, 3))
    ground = Image.fromarray(np.clip(rows, 0, 255).astype(np.uint8))
    big = face.resize((face.width * 5, face.height * 5), Image.Resampling.LANCZOS)
    ground.paste(big, (1500 - big.width, (1000 - big.height) // 2))
    path = out / "composed-photo.jpg"
    ground.save(path, "JPEG", quality=92)
    return path


def whole_photo(browser: Any, url: str, photo: Path, out: Path) -> None:
    """photo.png: the page's *Edit a whole photo* on a composed photo, Smiling +1.5."""
    from tempfile import TemporaryDirectory

    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900}, base_url=url)
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)

    def photo_edit(action: Callable[[], object]) -> Any:
        with page.expect_response(lambda r: r.url.endswith("/photo/edit"), timeout=120_000) as info:
            action()
        return info.value.json()

    with TemporaryDirectory() as tmp:
        path = composed(photo, Path(tmp))
        first = photo_edit(lambda: page.get_by_test_id("photo-input").set_input_files(str(path)))
    print(f"photo.png: the first request's stages {first['timings']} s")
    expect(page.get_by_test_id("photo-face").first).to_be_visible()
    smiling = page.locator('[data-testid="axis-row"][data-axis="Smiling"]')
    times = []
    for _ in range(3):
        photo_edit(smiling.get_by_test_id("axis-plus").click)
        times.append(int(page.get_by_test_id("photo-timing").get_attribute("data-ms") or 0))
    print(f"photo.png: slider edits' round trips {times} ms "
          f"({page.get_by_test_id('photo-timing').text_content()})")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(500)
    page.get_by_test_id("photo-view").screenshot(path=str(out / "photo.png"))


if __name__ == "__main__":
    main()
