"""The real server: uvicorn on a loopback port (in a thread), called through tlgan.client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from api.app import create_app
from api.settings import Settings
from tlgan.client import ApiError, AsyncClient, Client
from tlgan.pipeline import Pipeline
from tlgan.testing import TINY_ATTRIBUTES, CentredFaceDetector, serve
from tlgan_base.artifact import sha256_file


@pytest.fixture(scope="module")
def server_url(tiny_pipeline: Pipeline) -> Iterator[str]:
    # uploads are noise: a fake detector frames each as an aligned crop
    app = create_app(Settings(api_key="k3y"), pipeline=tiny_pipeline,
                     face_detector=CentredFaceDetector())
    with serve(app) as url:
        yield url


def test_client_round_trip(server_url: str) -> None:
    with Client(server_url, api_key="k3y", timeout=30) as api:
        assert api.ready()
        faces = api.generate(seed=3, count=2)
        assert [f.seed for f in faces] == [3, 4]
        assert faces[0].image.size == (64, 64) and faces[0].latent.dtype == np.float32
        assert set(faces[0].features or {}) == set(TINY_ATTRIBUTES)
        moved = api.edit(faces[0].latent, moves={"Smiling": 1.0}, locked=["Male"],
                         size=32, with_features=False)
        assert moved.image.size == (32, 32) and moved.features is None
        assert not np.array_equal(moved.latent, faces[0].latent)
        # Young is held per face by default (Male is locked); the tiny bundle has no masks
        assert moved.hold_references is True and moved.locality is False
        plain = api.edit(faces[0].latent, moves={"Smiling": 1.0}, hold_references=False,
                         locality=False, with_features=False)
        assert plain.hold_references is False and plain.unheld is None
        steps = api.interpolate(faces[0].latent, faces[1].latent, steps=3)
        assert [f.ratio for f in steps] == [0.0, 0.5, 1.0]
        assert np.array_equal(steps[0].latent, faces[0].latent)
        axes = api.axes()
        assert axes.names == TINY_ATTRIBUTES and axes.latent_size == 16
        assert api.generators()["loaded"]["name"] == "tiny-dcgan"
        cond = api.generate(seed=5, features={"Smiling": 0.1})
        assert cond[0].unmet is not None


def test_client_raises_api_error(server_url: str) -> None:
    with Client(server_url, api_key="k3y") as api:
        with pytest.raises(ApiError) as err:
            api.edit([0.0] * 3)
        assert err.value.status == 422 and err.value.message.startswith("latent: expected 16")
        with pytest.raises(ApiError) as err:
            api.edit([0.0] * 16, moves={"Wings": 1.0})
        assert "unknown axis 'Wings'" in err.value.message
    with Client(server_url) as anonymous, pytest.raises(ApiError) as err:
        anonymous.axes()
    assert err.value.status == 401


def test_async_client_concurrent(server_url: str) -> None:
    async def run() -> list[int]:
        async with AsyncClient(server_url, api_key="k3y") as api:
            faces = await asyncio.gather(*(api.generate(seed=s, with_features=False)
                                           for s in range(10, 18)))
            return [f[0].seed or 0 for f in faces]

    assert asyncio.run(run()) == list(range(10, 18))


def test_client_encodes_a_path_bytes_or_pil_image(server_url: str, tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    photo = Image.fromarray(rng.integers(0, 255, (70, 70, 3), dtype=np.uint8))
    path = tmp_path / "me.png"
    photo.save(path)
    with Client(server_url, api_key="k3y") as api:
        by_path = api.encode(path, steps=3)
        by_bytes = api.encode(path.read_bytes(), steps=3)
        by_image = api.encode(photo, steps=3, size=32, with_features=False)
        assert by_path.steps == 3 and by_path.image.size == (64, 64)
        assert np.array_equal(by_path.latent, by_bytes.latent)
        assert np.array_equal(by_path.latent, by_image.latent)  # sent as PNG: same pixels
        assert by_image.image.size == (32, 32) and by_image.features is None
        assert set(by_path.quality) == {"psnr", "embedding_cosine", "label_agreement"}
        assert by_path.face == 0 and by_path.faces == [{"box": [0.0, 0.0, 70.0, 70.0],
                                                        "score": 1.0}]
        with pytest.raises(ApiError) as err:
            api.encode(path, face=1)
        assert err.value.status == 422 and err.value.message.startswith("face:")
        moved = api.edit(by_path.latent, moves={"Smiling": 1.0})
        assert not np.array_equal(moved.latent, by_path.latent)
        with pytest.raises(ApiError) as err:
            api.encode(b"not a photo")
        assert err.value.status == 422 and err.value.message.startswith("image:")

    async def run() -> np.ndarray:
        async with AsyncClient(server_url, api_key="k3y") as api:
            return (await api.encode(path, steps=3)).latent

    assert np.array_equal(asyncio.run(run()), by_path.latent)


@pytest.mark.slow
def test_serve_exits_with_one_line_on_corrupt_weights(tmp_path: Path) -> None:
    """A corrupt generator artifact: `tlgan serve` prints one line (no traceback), exits 2."""
    weights = tmp_path / "gen.pt"
    weights.write_bytes(b"not a torch file")
    plugin = tmp_path / "gen.json"
    plugin.write_text(json.dumps({"kind": "generator-plugin", "name": "bad", "format":
                                  "state_dict", "file": "gen.pt", "latent_size": 8,
                                  "sha256": sha256_file(weights),
                                  "resolution": 64, "module":
                                  "tlgan.generators.dcgan:DCGANGenerator"}))
    proc = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--port", "0", "--generator",
         str(plugin), "--extractor", "none", "--bundle", "none"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: generator (--generator / TLGAN_GENERATOR): generator "
                              "plug-in") and "gen.pt" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_client_wait_ready_polls_until_ready_and_stops_when_the_server_is_gone() -> None:
    """Client.wait_ready: refused connections and 503 count as "not yet"; True on the first
    200; False at once when alive() says the server is gone, and after the timeout."""
    import httpx

    from tlgan.client import Client

    answers = iter([None, 503, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/readyz"
        code = next(answers)
        if code is None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(code, json={})

    with Client("http://test", transport=httpx.MockTransport(handler)) as client:
        assert client.wait_ready(10, interval=0.0) is True
    assert next(answers, "drained") == "drained"  # stopped at the 200

    asked: list[str] = []

    def not_ready(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(503, json={})

    with Client("http://test", transport=httpx.MockTransport(not_ready)) as client:
        assert client.wait_ready(3600, alive=lambda: False) is False
        assert asked == []  # a gone server is not polled for an hour
        assert client.wait_ready(0.05, interval=0.01) is False
        assert asked and set(asked) == {"/readyz"}
