"""POST /interpolate: ratio or steps, slerp/lerp, exact endpoints."""

from __future__ import annotations

import numpy as np
from api_helpers import detail
from fastapi.testclient import TestClient

from tlgan.latents import sample_latent
from tlgan.testing import TINY_LATENT

A = [float(v) for v in sample_latent(1, TINY_LATENT)]
B = [float(v) for v in sample_latent(2, TINY_LATENT)]


def test_steps_give_evenly_spaced_faces_with_exact_ends(client: TestClient) -> None:
    r = client.post("/interpolate", json={"latent_a": A, "latent_b": B, "steps": 5})
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert [f["ratio"] for f in faces] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert faces[0]["latent"] == A and faces[-1]["latent"] == B
    assert faces[0]["image"] != faces[-1]["image"]
    ends = client.post("/generate", json={"seed": 1}).json()["faces"][0]
    assert faces[0]["image"] == ends["image"]


def test_lerp_midpoint_and_slerp_norm(client: TestClient) -> None:
    lerp = client.post("/interpolate", json={"latent_a": A, "latent_b": B, "ratio": 0.5,
                                             "method": "lerp"}).json()["faces"]
    assert len(lerp) == 1 and lerp[0]["ratio"] == 0.5
    assert np.allclose(lerp[0]["latent"], (np.asarray(A) + np.asarray(B)) / 2, atol=1e-6)
    slerp = client.post("/interpolate", json={"latent_a": A, "latent_b": B, "ratio": 0.5,
                                              "with_features": False}).json()["faces"][0]
    mid = (np.linalg.norm(A) + np.linalg.norm(B)) / 2
    assert np.isclose(np.linalg.norm(slerp["latent"]), mid, rtol=1e-5)
    assert slerp["features"] is None


def test_exactly_one_of_ratio_or_steps(client: TestClient) -> None:
    for extra in ({}, {"ratio": 0.5, "steps": 3}):
        r = client.post("/interpolate", json={"latent_a": A, "latent_b": B, **extra})
        assert r.status_code == 422 and detail(r).startswith("ratio: give exactly one")


def test_latent_b_length_is_checked(client: TestClient) -> None:
    r = client.post("/interpolate", json={"latent_a": A, "latent_b": B[:-1], "ratio": 0.1})
    assert r.status_code == 422 and detail(r).startswith("latent_b: expected 16 numbers")


def test_image_only_accept_is_406(client: TestClient) -> None:
    r = client.post("/interpolate", json={"latent_a": A, "latent_b": B, "ratio": 0.5},
                    headers={"Accept": "image/png"})
    assert r.status_code == 406 and detail(r).startswith("Accept: raw image answers")
