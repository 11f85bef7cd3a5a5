"""``custom_axes`` on /edit: a request's own axes, moved along and locked like the bundle's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from api_helpers import detail
from fastapi.testclient import TestClient

from tlgan.latents import sample_latent
from tlgan.pipeline import MAX_CUSTOM_AXES, Pipeline
from tlgan.testing import TINY_LATENT


def _z() -> list[float]:
    return [float(x) for x in sample_latent(5, TINY_LATENT)]


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(TINY_LATENT)
    return v / np.linalg.norm(v)


def test_a_custom_axis_moves_like_a_bundle_axis_and_is_normalized(
        client: TestClient) -> None:
    d = _unit(1)
    r = client.post("/edit", json={"latent": _z(), "moves": {"mine": 2.0},
                                   "custom_axes": {"mine": (5.0 * d).tolist()},
                                   "with_features": False})
    assert r.status_code == 200, r.text
    moved = np.asarray(r.json()["latent"], dtype=np.float64)
    assert np.allclose(moved - np.asarray(_z()), 2.0 * d, atol=1e-5)
    # the object form gives the same answer
    r2 = client.post("/edit", json={"latent": _z(), "moves": {"mine": 2.0},
                                    "custom_axes": {"mine": {"direction": d.tolist()}},
                                    "with_features": False})
    assert r2.json()["latent"] == r.json()["latent"]


def test_locking_a_custom_axis_projects_it_out_of_bundle_moves(
        client: TestClient, tiny_pipeline: Pipeline) -> None:
    d = _unit(2)
    body = {"latent": _z(), "moves": {"Smiling": 2.0}, "locked": ["mine"],
            "custom_axes": {"mine": d.tolist()}, "with_features": False}
    r = client.post("/edit", json=body)
    assert r.status_code == 200, r.text
    move = np.asarray(r.json()["latent"], dtype=np.float64) - np.asarray(_z())
    assert abs(float(move @ d)) < 1e-5  # nothing moved along the locked custom axis
    assert np.linalg.norm(move) > 0.5  # but Smiling still moved


def test_bad_custom_axes_get_422_naming_the_field(client: TestClient) -> None:
    base = {"latent": _z(), "moves": {"mine": 1.0}, "with_features": False}
    cases = [
        ({"mine": [1.0] * (TINY_LATENT - 1)}, "custom_axes.mine: expected 16 numbers"),
        ({"mine": [0.0] * TINY_LATENT}, "custom_axes.mine: the direction must be finite"),
        ({"Smiling": [1.0] * TINY_LATENT}, "custom_axes.Smiling: the bundle has an axis"),
        ({"mine": {"direction": [1.0] * TINY_LATENT, "head": {"w": [1]}}},
         "custom_axes.mine.head.weights: Field required"),
    ]
    for axes, message in cases:
        r = client.post("/edit", json={**base, "custom_axes": axes})
        assert r.status_code == 422, r.text
        assert message in detail(r), detail(r)
    many = {f"a{i}": [1.0] * TINY_LATENT for i in range(MAX_CUSTOM_AXES + 1)}
    r = client.post("/edit", json={**base, "custom_axes": many})
    assert r.status_code == 422 and "custom_axes" in detail(r)
    r = client.post("/edit", json={**base, "custom_axes": {"mine": [1e9] * TINY_LATENT}})
    assert r.status_code == 422 and "custom_axes" in detail(r)


def _head(size: int, seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    return {"weights": rng.standard_normal(size).tolist(), "bias": 0.1,
            "mean": np.zeros(size).tolist(), "std": np.ones(size).tolist(), "val_auc": 0.9,
            "C": 1.0, "n_train": 40, "positives_rate": 0.5}


def test_a_custom_axis_with_a_head_gets_a_probability_in_features(
        client: TestClient, tiny_pipeline: Pipeline) -> None:
    from axes.heads import Head

    assert tiny_pipeline.extractor is not None
    size = tiny_pipeline.extractor.embedding_size
    d = _unit(3)
    axes = {"mine": {"direction": d.tolist(), "head": _head(size)}}
    for locked in ([], ["Male"]):  # plain and with a closed-loop lock
        r = client.post("/edit", json={"latent": _z(), "moves": {"mine": 1.0, "Smiling": 0.5},
                                       "locked": locked, "custom_axes": axes})
        assert r.status_code == 200, r.text
        body = r.json()
        features = body["features"]
        assert set(tiny_pipeline.attributes) | {"mine"} == set(features)
        # the probability is the head's on the returned face's embedding
        z = np.asarray(body["latent"], dtype=np.float32)[None, :]
        expected = Head.from_dict(_head(size)).predict_proba(tiny_pipeline.embed_latents(z))
        assert abs(features["mine"] - float(expected[0])) < 1e-4
    bad = {"mine": {"direction": d.tolist(), "head": _head(size + 1)}}
    r = client.post("/edit", json={"latent": _z(), "custom_axes": bad, "moves": {"mine": 1}})
    assert r.status_code == 422 and "custom_axes.mine.head: a head for embeddings" in detail(r)


def test_custom_axes_work_on_a_service_without_a_bundle(
        make_client: Callable[..., TestClient], tiny_pipeline: Pipeline) -> None:
    bare = Pipeline(tiny_pipeline.generator, tiny_pipeline.extractor)  # no axes at all
    c = make_client(pipeline=bare)
    d = _unit(4)
    r = c.post("/edit", json={"latent": _z(), "moves": {"mine": 1.5}, "locked": ["mine2"],
                              "custom_axes": {"mine": d.tolist(), "mine2": _unit(5).tolist()},
                              "with_features": False})
    assert r.status_code == 200, r.text
    r = c.post("/edit", json={"latent": _z(), "moves": {"Smiling": 1.0}})
    assert r.status_code == 422 and "no axis bundle" in detail(r)


def _taught(pipeline: Pipeline) -> tuple[np.ndarray, dict[str, object]]:
    """A custom axis with a head that really follows it: the head's weights are the
    direction's effect on the embeddings (fitted on rendered faces)."""
    from axes.heads import train_head

    z = np.stack([sample_latent(100 + i, TINY_LATENT) for i in range(200)])
    d = _unit(7)
    emb = pipeline.embed_latents(z.astype(np.float32))
    head = train_head(emb, (z @ d) > 0)
    return d, head.to_dict()


def test_a_custom_head_is_a_generate_target_and_a_lock_held_per_face(
        client: TestClient, tiny_pipeline: Pipeline) -> None:
    d, head = _taught(tiny_pipeline)
    axes = {"mine": {"direction": d.tolist(), "head": head}}
    r = client.post("/generate", json={"seed": 11, "count": 2, "features": {"mine": 0.9},
                                       "custom_axes": axes})
    assert r.status_code == 200, r.text
    for face in r.json()["faces"]:
        assert "mine" in face["features"]
        if "mine" not in face["unmet"]:
            assert abs(face["features"]["mine"] - 0.9) <= 0.2
    # a lock on it is held per face: closed loop reports on it
    r = client.post("/edit", json={"latent": _z(), "moves": {"Smiling": 2.0},
                                   "locked": ["mine"], "custom_axes": axes})
    assert r.status_code == 200, r.text
    assert r.json()["unheld"] is not None  # held closed-loop (null when nothing was held)
    # a target naming a custom axis without a head is refused, naming the field
    r = client.post("/generate", json={"seed": 1, "features": {"plain": 0.9},
                                       "custom_axes": {"plain": d.tolist()}})
    assert r.status_code == 422 and "features" in detail(r)


def test_interpolate_labels_faces_with_custom_heads(client: TestClient,
                                                    tiny_pipeline: Pipeline) -> None:
    d, head = _taught(tiny_pipeline)
    far = (-np.asarray(_z())).tolist()
    r = client.post("/interpolate", json={"latent_a": _z(), "latent_b": far, "steps": 3,
                                          "custom_axes": {"mine": {"direction": d.tolist(),
                                                                   "head": head}}})
    assert r.status_code == 200, r.text
    assert all("mine" in f["features"] for f in r.json()["faces"])
