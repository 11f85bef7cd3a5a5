"""The service on a generator with a mapping network and axes fitted in w: latents in and
out are w latents, rendered from w."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from api_helpers import decode_image
from fastapi.testclient import TestClient

from tlgan.pipeline import Pipeline
from tlgan.testing import (
    TINY_W,
    calibrate_extractor,
    tiny_bundle,
    tiny_extractor,
    tiny_mapped_generator,
)


@pytest.fixture(scope="module")
def w_pipeline() -> Pipeline:
    gen = tiny_mapped_generator()
    ext = tiny_extractor()
    calibrate_extractor(ext, gen.render_tensor(gen.sample_latents(range(128))))
    return Pipeline(generator=gen, extractor=ext, bundle=tiny_bundle(gen, ext, n=800, space="w"))


def test_a_w_service_takes_and_returns_w_latents(make_client: Callable[..., TestClient],
                                                 w_pipeline: Pipeline) -> None:
    client = make_client(pipeline=w_pipeline)
    axes = client.get("/axes").json()
    assert axes["latent_space"] == "w" and axes["latent_size"] == TINY_W
    face = client.post("/generate", json={"seed": 4}).json()["faces"][0]
    w = np.asarray(face["latent"], np.float32)
    np.testing.assert_array_equal(w, w_pipeline.generator.sample_latents([4], space="w")[0])
    r = client.post("/edit", json={"latent": w.tolist(), "moves": {"Smiling": 1.0}})
    assert r.status_code == 200, r.text
    out = np.asarray(r.json()["latent"], np.float32)
    assert out.shape == (TINY_W,)
    assert np.array_equal(decode_image(r.json()["image"]),
                          w_pipeline.generator.render(out[None], "w")[0])
    bad = client.post("/edit", json={"latent": [0.0] * 16, "moves": {}})
    assert bad.status_code == 422 and str(TINY_W) in bad.text
    served = client.get("/openapi.json").json()["components"]["schemas"]
    assert served["EditRequest"]["properties"]["latent"]["x-latent-space"] == "w"


def test_a_z_service_says_z(client: TestClient) -> None:
    assert client.get("/axes").json()["latent_space"] == "z"
