"""The page's routes and assets, without a browser: served, self-contained, public API only."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_helpers import web_app

from api.web.router import ASSETS, MODULES, STATIC_DIR, router
from tlgan.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(tiny_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(web_app(tiny_pipeline)) as c:
        yield c
    assert c.app.state.server_errors == 0


def test_page_is_served_with_a_strict_policy(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    html = r.text
    assert '<script type="module" src="static/main.js">' in html
    assert 'href="static/style.css"' in html
    assert "<style" not in html and " style=" not in html and "<script>" not in html


@pytest.mark.parametrize(("name", "media"), [*((m, "text/javascript") for m in MODULES),
                                            ("style.css", "text/css")])
def test_assets_are_served(client: TestClient, name: str, media: str) -> None:
    r = client.get(f"/static/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(media)
    assert r.content == (STATIC_DIR / name).read_bytes()
    etag = r.headers["etag"]
    assert client.get(f"/static/{name}", headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize("path", ["/static/index.html", "/static/nope.js",
                                  "/static/..%2Frouter.py", "/static/../router.py",
                                  "/static/%2e%2e/__init__.py", "/static/app.js",
                                  "/static/x%2Fmain.js"])
def test_only_listed_assets_are_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert set(r.json()) == {"detail", "errors"}


def test_page_routes_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


def test_page_calls_only_public_api_routes(client: TestClient) -> None:
    js = "\n".join((STATIC_DIR / m).read_text() for m in MODULES)
    called = set(re.findall(r'\bapi\("([^"]+)"', js))
    called |= set(re.findall(r'\bfaceRequest\([^,]+, "([^"]+)"', js))
    called |= set(re.findall(r'\bapi\(`([^`?$]+)', js))  # template paths, query dropped
    assert called == {"axes", "readyz", "generate", "edit", "interpolate", "axes/fit",
                      "axes/discover", "encode", "photo/edit"}
    public = set(client.get("/openapi.json").json()["paths"])
    assert {"/" + c for c in called} <= public


def test_page_modules_import_only_listed_modules() -> None:
    """The entry module reaches every listed module, and modules import nothing else (an
    unlisted one would be a 404 for the browser); no file over 450 lines; shared state is a
    module's export, not a global on window."""
    on_disk = {p.name for p in STATIC_DIR.glob("*.js")}
    assert on_disk == set(MODULES)
    reached: set[str] = set()
    todo = ["main.js"]
    while todo:
        name = todo.pop()
        reached.add(name)
        text = (STATIC_DIR / name).read_text()
        assert len(text.splitlines()) <= 450, name
        assert "window.state" not in text and "globalThis" not in text, name
        specifiers = re.findall(r'^import\b[^;]*?\bfrom\s+"([^"]+)";', text,
                                re.MULTILINE | re.DOTALL)
        assert len(specifiers) == len(re.findall(r"^import\b", text, re.MULTILINE)), name
        assert "import(" not in text, name  # no dynamic imports the list could miss
        for spec in specifiers:
            assert spec.startswith("./") and spec[2:] in MODULES, (name, spec)
            if spec[2:] not in reached:
                todo.append(spec[2:])
    assert reached == set(MODULES)


def test_page_needs_nothing_from_other_hosts() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        # The only URL allowed is the SVG namespace name (an identifier, never fetched).
        text = text.replace('"http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", text, re.IGNORECASE), path.name
        assert "@import" not in text and "url(" not in text, path.name


def test_assets_ship_as_package_data() -> None:
    """pyproject's package-data globs must cover every file the page needs (wheel installs)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["*"]
    files = ["index.html", *ASSETS]
    for name in files:
        assert (STATIC_DIR / name).is_file()
        assert any(Path(name).match(p) for p in patterns), name


def test_router_exposes_only_the_page() -> None:
    assert sorted(r.path for r in router.routes) == ["/", "/static/{name}"]  # type: ignore[attr-defined]


def test_page_truncation_default_is_the_services(client: TestClient) -> None:
    from tlgan.latents import DEFAULT_TRUNCATION

    html = client.get("/").text
    field = re.search(r'<input[^>]*data-testid="truncation"[^>]*>', html)
    assert field is not None
    value = re.search(r'value="([0-9.]+)"', field.group(0))
    assert value is not None and float(value.group(1)) == DEFAULT_TRUNCATION
