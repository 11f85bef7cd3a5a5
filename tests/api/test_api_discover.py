"""GET /axes/discover on the tiny pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tlgan.pipeline import Pipeline


def test_discover_contract(client: TestClient, tiny_pipeline: Pipeline) -> None:
    r = client.get("/axes/discover", params={"k": 3})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["method"] == "sefa" and [d["index"] for d in doc["directions"]] == [0, 1, 2]
    first = doc["directions"][0]
    assert set(first) == {"index", "direction", "score", "moves", "nearest_axis"}
    assert len(first["direction"]) == tiny_pipeline.latent_size
    assert np.linalg.norm(first["direction"]) == pytest.approx(1.0, abs=1e-5)
    assert set(first["moves"]) <= set(tiny_pipeline.attributes)
    assert first["nearest_axis"]["name"] in tiny_pipeline.axis_names
    # deterministic and cached: fewer directions are the first ones of the larger answer
    again = client.get("/axes/discover", params={"k": 2}).json()
    assert again["directions"] == doc["directions"][:2]


def test_discover_pca(client: TestClient) -> None:
    r = client.get("/axes/discover", params={"k": 2, "method": "pca"})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "pca" and len(r.json()["directions"]) == 2


@pytest.mark.parametrize(("params", "field"), [({"k": 0}, "k"), ({"k": 21}, "k"),
                                               ({"k": "x"}, "k"), ({"method": "ica"}, "method")])
def test_discover_bad_query(client: TestClient, params: dict[str, object], field: str) -> None:
    r = client.get("/axes/discover", params=params)
    assert r.status_code == 422
    assert field in r.json()["detail"]
