"""POST /edit: moves along unit axes, locking, raw image answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import numpy as np
import pytest
from api_helpers import decode_image, detail
from fastapi.testclient import TestClient

from api.media import decode_latent_header
from tlgan.latents import sample_latent
from tlgan.pipeline import Pipeline
from tlgan.testing import TINY_LATENT


def _z(seed: int = 3) -> list[float]:
    return [float(v) for v in sample_latent(seed, TINY_LATENT)]


def _axis(pipeline: Pipeline, name: str) -> np.ndarray:
    assert pipeline.bundle is not None
    return np.asarray(pipeline.bundle.directions[pipeline.bundle.names.index(name)], np.float64)


def test_move_adds_distance_times_unit_axis(client: TestClient, tiny_pipeline: Pipeline) -> None:
    z = np.asarray(_z(), np.float64)
    r = client.post("/edit", json={"latent": z.tolist(), "moves": {"Smiling": 1.5},
                                   "hold_references": False})
    assert r.status_code == 200, r.text
    assert r.json()["hold_references"] is False
    out = np.asarray(r.json()["latent"], np.float64)
    assert np.allclose(out - z, 1.5 * _axis(tiny_pipeline, "Smiling"), atol=1e-5)
    img = tiny_pipeline.render(out.astype(np.float32)[None])[0]
    assert np.array_equal(decode_image(r.json()["image"]), img)
    assert set(r.json()["features"]) == set(tiny_pipeline.attributes)


def test_locking_male_holds_the_faces_male_probability(client: TestClient,
                                                       tiny_pipeline: Pipeline) -> None:
    male, smiling = _axis(tiny_pipeline, "Male"), _axis(tiny_pipeline, "Smiling")
    col = tiny_pipeline.attributes.index("Male")
    corrected = 0
    for seed in range(3, 11):
        z = np.asarray(_z(seed), np.float64)
        before = float(tiny_pipeline.label_latents(z[None].astype(np.float32))[0, col])
        r = client.post("/edit", json={"latent": z.tolist(), "moves": {"Smiling": 2.0},
                                       "locked": ["Male"], "hold_references": False})
        assert r.status_code == 200, r.text
        body = r.json()
        locked = np.asarray(body["latent"])
        move = locked - z
        # outside the Male axis the move is the open-loop one: Smiling with Male projected out
        off_male = move - (move @ male) * male
        open_loop = 2.0 * (smiling - (smiling @ male) * male)
        np.testing.assert_allclose(off_male, open_loop, atol=1e-4)
        corrected += abs(float(move @ male)) > 1e-4  # closed loop: corrected along Male
        # the face's own P(Male) is held within 0.05, or the response says it was not
        held = abs(body["features"]["Male"] - before) <= 0.05
        assert body["unheld"] == ([] if held else ["Male"])
    assert corrected > 0
    free = client.post("/edit", json={"latent": _z(), "moves": {"Smiling": 2.0},
                                      "hold_references": False}).json()
    assert free["unheld"] is None  # no lock: nothing held closed-loop


def _correlated_pair(pipeline: Pipeline) -> tuple[str, str]:
    """The two non-reference axes with the largest |cosine| (they are not orthogonalized)."""
    assert pipeline.bundle is not None
    names = [n for n in pipeline.axis_names if n not in pipeline.bundle.references]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    return max(pairs, key=lambda p: abs(_axis(pipeline, p[0]) @ _axis(pipeline, p[1])))


def test_locking_a_correlated_axis_changes_the_move(make_client: Callable[..., TestClient],
                                                    tiny_pipeline: Pipeline) -> None:
    # without an extractor a lock is the open-loop projection alone (the fast path)
    client = make_client(Pipeline(generator=tiny_pipeline.generator, extractor=None,
                                  bundle=tiny_pipeline.bundle))
    mover, keep = _correlated_pair(tiny_pipeline)
    a_move, a_keep = _axis(tiny_pipeline, mover), _axis(tiny_pipeline, keep)
    assert abs(a_move @ a_keep) > 0.05  # correlated, so locking must matter
    z = np.asarray(_z(), np.float64)
    free = np.asarray(client.post("/edit", json={"latent": z.tolist(),
                                                 "moves": {mover: 2.0},
                                                 "with_features": False}).json()["latent"])
    locked = np.asarray(client.post("/edit", json={
        "latent": z.tolist(), "moves": {mover: 2.0}, "locked": [keep],
        "with_features": False}).json()["latent"])
    assert abs((free - z) @ a_keep) > 0.1  # unlocked: the locked axis' component moves
    assert abs((locked - z) @ a_keep) < 1e-5  # locked: it does not
    assert (locked - z) @ a_move > 0.5  # ... while the face still moves along the mover
    images = [client.post("/edit", json={"latent": v.tolist(), "with_features": False})
              .json()["image"] for v in (free, locked)]
    assert images[0] != images[1]
    assert client.post("/edit", json={"latent": z.tolist(), "moves": {mover: 2.0},
                                      "locked": [keep],
                                      "with_features": False}).json()["unheld"] is None


def test_moving_a_locked_axis_cancels(client: TestClient) -> None:
    z = _z()
    r = client.post("/edit", json={"latent": z, "moves": {"Male": 3.0}, "locked": ["Male"]})
    assert np.allclose(r.json()["latent"], z, atol=1e-5)


def test_no_moves_returns_same_latent_and_image(client: TestClient) -> None:
    z = _z(4)
    face = client.post("/generate", json={"seed": 4}).json()["faces"][0]
    r = client.post("/edit", json={"latent": z}).json()
    assert r["latent"] == z and r["image"] == face["image"]


def test_with_features_false_gives_null(client: TestClient) -> None:
    r = client.post("/edit", json={"latent": _z(), "moves": {"Young": -1},
                                   "with_features": False})
    assert r.status_code == 200 and r.json()["features"] is None


def test_accept_image_returns_bytes_and_latent_header(client: TestClient) -> None:
    req = {"latent": _z(), "moves": {"Young": 1.0}, "format": "png"}
    js = client.post("/edit", json=req).json()
    r = client.post("/edit", json=req, headers={"Accept": "image/png"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == base64.b64decode(js["image"])
    latent = decode_latent_header(r.headers["x-latent"])
    assert latent.dtype == np.float32 and latent.tolist() == js["latent"]
    assert "x-seed" not in r.headers


def test_unknown_axes_are_422(client: TestClient) -> None:
    r = client.post("/edit", json={"latent": _z(), "moves": {"Wings": 1}})
    assert r.status_code == 422 and detail(r).startswith("moves: unknown axis 'Wings'")
    assert r.json()["errors"][0]["field"] == "moves"
    r = client.post("/edit", json={"latent": _z(), "locked": ["Wings"]})
    assert r.status_code == 422 and detail(r).startswith("locked: unknown axis 'Wings'")


def test_hold_references_default_holds_gender_and_age_per_face(client: TestClient,
                                                               tiny_pipeline: Pipeline) -> None:
    cols = [tiny_pipeline.attributes.index(r) for r in ("Male", "Young")]
    held = 0
    for seed in range(3, 9):
        z = np.asarray(_z(seed), np.float64)
        before = tiny_pipeline.label_latents(z[None].astype(np.float32))[0, cols]
        off = client.post("/edit", json={"latent": z.tolist(), "moves": {"Smiling": 3.0},
                                         "hold_references": False}).json()
        r = client.post("/edit", json={"latent": z.tolist(), "moves": {"Smiling": 3.0}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["hold_references"] is True and off["hold_references"] is False
        after = np.array([body["features"][n] for n in ("Male", "Young")])
        assert body["unheld"] == [n for n, b, a in zip(("Male", "Young"), before, after,
                                                        strict=True) if abs(a - b) > 0.05]
        # the image is the face of the latent answered (no locality on the tiny bundle)
        img = tiny_pipeline.render(np.asarray(body["latent"], np.float32)[None])[0]
        assert np.array_equal(decode_image(body["image"]), img)
        held += body["latent"] != off["latent"]
    assert held > 0
    # nothing left to hold: both references moved
    r = client.post("/edit", json={"latent": _z(), "moves": {"Male": 1.0, "Young": 1.0}})
    assert r.json()["hold_references"] is False


def test_realism_is_held_and_reported_with_a_critic(
        make_client: Callable[..., TestClient], tiny_pipeline: Pipeline) -> None:
    import dataclasses

    from tlgan.testing import tiny_critic

    p = dataclasses.replace(tiny_pipeline,
                            critic=tiny_critic(tiny_pipeline.generator, gain=30.0))
    c = make_client(p)
    outcomes = []
    for seed in range(3, 9):
        body = {"latent": _z(seed), "moves": {"Eyeglasses": 3.0}, "hold_references": False,
                "realism": True}
        r = c.post("/edit", json=body)
        assert r.status_code == 200, r.text
        real = r.json()["realism"]
        assert set(real) == {"start", "moved", "end", "held", "hold", "tolerance"}
        assert real["hold"] and real["end"] >= real["moved"] and real["held"] == (
            real["end"] >= real["start"] - real["tolerance"])
        outcomes.append(real)
        # the default (and false) checks without holding: the scores of the plain edit
        off = c.post("/edit", json={k: v for k, v in body.items() if k != "realism"})
        checked = off.json()["realism"]
        assert off.status_code == 200 and not checked["hold"]
        assert checked["end"] == checked["moved"] == pytest.approx(real["moved"], abs=1e-3)
        assert checked["start"] == pytest.approx(real["start"], abs=1e-3)
        if real["end"] > real["moved"]:  # the hold moved the face: another latent
            assert off.json()["latent"] != r.json()["latent"]
        # image answers carry the same outcome as a header
        img = c.post("/edit", json=body, headers={"Accept": "image/png"})
        assert img.status_code == 200
        assert json.loads(img.headers["X-Realism"]) == real
    assert any(o["end"] > o["moved"] for o in outcomes), "the fixture should make some fall"


def test_realism_without_a_critic_is_off_and_refused_when_asked(client: TestClient) -> None:
    r = client.post("/edit", json={"latent": _z(), "moves": {"Smiling": 1.0}})
    assert r.status_code == 200 and r.json()["realism"] is None
    r = client.post("/edit", json={"latent": _z(), "moves": {"Smiling": 1.0}},
                    headers={"Accept": "image/png"})
    assert r.status_code == 200 and "X-Realism" not in r.headers
    r = client.post("/edit", json={"latent": _z(), "moves": {"Smiling": 1.0}, "realism": True})
    assert r.status_code == 422
    assert detail(r).startswith("realism: this service has no realism critic")
