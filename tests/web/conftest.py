"""Fixtures for the web page tests: the app with the page, a real server, headless Chromium.

Browser tests need Debian's ``chromium`` (or ``$TLGAN_CHROMIUM``) and the ``playwright``
package (its own browser downloads are not used). Without them the tests are skipped, unless
``TLGAN_REQUIRE_BROWSER=1`` (CI), where they fail. ``TLGAN_SCREENSHOTS=DIR`` saves screenshots
of the page's states into DIR.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from web_helpers import CHROMIUM_ARGS, web_app

from tlgan.pipeline import Pipeline
from tlgan.testing import serve


@pytest.fixture(scope="module")
def server_url(tiny_pipeline: Pipeline) -> Iterator[str]:
    """The app (default settings, tiny pipeline) served on loopback."""
    with serve(web_app(tiny_pipeline)) as url:
        yield url


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright)"
    env = os.environ.get("TLGAN_CHROMIUM")
    if env and not Path(env).is_file():
        return f"TLGAN_CHROMIUM={env} is not a file"
    if chromium_path() is None:
        return "chromium is not installed (apt-get install chromium, or set TLGAN_CHROMIUM)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip browser tests up front (before building models) when there is no browser, unless
    TLGAN_REQUIRE_BROWSER=1: then the ``browser`` fixture fails them."""
    reason = browser_missing()
    if reason is None or os.environ.get("TLGAN_REQUIRE_BROWSER") == "1":
        return
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("TLGAN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (TLGAN_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def chromium_path() -> str | None:
    """$TLGAN_CHROMIUM, else Debian's chromium on PATH."""
    env = os.environ.get("TLGAN_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright (one per test module)."""
    reason = browser_missing()
    if reason is not None:
        _unavailable(reason)
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    assert path is not None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


class PageProbe:
    """What a page did: uncaught script errors (and CSP violations), the URLs it requested."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.urls: list[str] = []


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., tuple[Any, PageProbe]]]:
    """Open pages in fresh browser contexts; on teardown assert the page raised no script
    errors and fetched nothing but its own server (and data: and its own blob: URLs)."""
    opened: list[tuple[Any, PageProbe, str]] = []

    def make(base_url: str, **context_options: Any) -> tuple[Any, PageProbe]:
        options = {"viewport": {"width": 1280, "height": 900}, **context_options}
        context = browser.new_context(base_url=base_url, **options)
        context.set_default_timeout(15_000)
        page = context.new_page()
        probe = PageProbe()
        page.on("pageerror", lambda exc: probe.errors.append(str(exc)))
        page.on("console", lambda msg: probe.errors.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text else None)
        page.on("request", lambda req: probe.urls.append(req.url))
        opened.append((context, probe, base_url))
        return page, probe

    yield make
    for context, probe, base_url in opened:
        context.close()
        assert probe.errors == [], f"script errors on the page: {probe.errors}"
        # data: URLs, and blob: URLs of this origin (object URLs of the user's own files)
        foreign = [u for u in probe.urls
                   if not (u.startswith(base_url + "/") or u.startswith("data:")
                           or u.startswith(f"blob:{base_url}/"))]
        assert foreign == [], f"the page fetched other hosts: {foreign}"


@pytest.fixture
def screenshot() -> Callable[[Any, str], None]:
    """``screenshot(page, name)``: save ``name``.png into $TLGAN_SCREENSHOTS (if set)."""
    folder = os.environ.get("TLGAN_SCREENSHOTS")

    def shot(page: Any, name: str) -> None:
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return shot
