"""POST /generate's `quality`: raw (today's faces), ranked (the critic's best of K), their
defaults with and without a critic, the 422s, and GET /generators listing the critic."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from api_helpers import decode_image, detail
from fastapi.testclient import TestClient

from tlgan.pipeline import Pipeline
from tlgan.pipeline.ranking import DEFAULT_CANDIDATES


def test_raw_with_a_critic_is_byte_identical_to_the_service_without_one(
        make_client: Callable[..., TestClient], ranked_pipeline: Pipeline) -> None:
    plain = make_client().post("/generate", json={"seed": 11, "count": 4}).json()
    ranked_client = make_client(pipeline=ranked_pipeline)
    raw = ranked_client.post("/generate", json={"seed": 11, "count": 4,
                                                "quality": "raw"}).json()
    assert raw == plain
    assert all(f["candidate"] is None and f["realism"] is None for f in raw["faces"])


def test_ranked_returns_the_chosen_latent_and_raw_stays_the_default_with_a_critic(
        make_client: Callable[..., TestClient], ranked_pipeline: Pipeline,
        tiny_pipeline: Pipeline) -> None:
    client = make_client(pipeline=ranked_pipeline)
    default = client.post("/generate", json={"seed": 20, "count": 2}).json()["faces"]
    assert [f["candidate"] for f in default] == [None, None]  # DEFAULT_QUALITY: raw
    assert np.array_equal(np.asarray(default[0]["latent"], np.float32),
                          tiny_pipeline.seeds_to_latents([20])[0])
    client = make_client(pipeline=ranked_pipeline, quality="ranked")
    body = client.post("/generate", json={"seed": 20, "count": 6}).json()
    want = ranked_pipeline.seeded_latents(range(20, 26), 1.0, "ranked", DEFAULT_CANDIDATES)
    assert want.chosen is not None and want.realism is not None
    for i, face in enumerate(body["faces"]):
        assert face["candidate"] == int(want.chosen[i])
        assert face["realism"] == round(float(want.realism[i]), 4)
        z = np.asarray(face["latent"], dtype=np.float32)
        assert np.array_equal(z, want.latents[i])
        assert np.array_equal(decode_image(face["image"]), ranked_pipeline.render(z[None])[0])
    assert {f["candidate"] for f in body["faces"]} != {0}
    assert client.post("/generate", json={"seed": 20, "count": 6}).json() == body
    eight = client.post("/generate", json={"seed": 20, "count": 2, "quality": "ranked",
                                           "candidates": 8}).json()["faces"]
    want8 = ranked_pipeline.seeded_latents([20, 21], 1.0, "ranked", 8)
    assert [f["candidate"] for f in eight] == want8.chosen.tolist()  # type: ignore[union-attr]
    # /edit continues from the chosen latent: no moves give the same face
    edit = client.post("/edit", json={"latent": body["faces"][0]["latent"]}).json()
    assert edit["image"] == body["faces"][0]["image"]


def test_the_service_settings_choose_the_default_quality_and_candidates(
        make_client: Callable[..., TestClient], ranked_pipeline: Pipeline) -> None:
    raw = make_client(pipeline=ranked_pipeline, quality="raw")
    assert raw.post("/generate", json={"seed": 3}).json()["faces"][0]["candidate"] is None
    two = make_client(pipeline=ranked_pipeline, quality="ranked", candidates=2)
    face = two.post("/generate", json={"seed": 3}).json()["faces"][0]
    want = ranked_pipeline.seeded_latents([3], 1.0, "ranked", 2)
    assert face["candidate"] == int(want.chosen[0])  # type: ignore[index]


def test_quality_and_candidates_errors_name_the_field(
        make_client: Callable[..., TestClient], ranked_pipeline: Pipeline) -> None:
    plain = make_client()
    r = plain.post("/generate", json={"seed": 1, "quality": "ranked"})
    assert r.status_code == 422 and detail(r).startswith("quality:"), r.text
    assert "critic" in detail(r)
    assert plain.post("/generate", json={"seed": 1}).json()["faces"][0]["candidate"] is None
    ranked = make_client(pipeline=ranked_pipeline)
    for bad in ({"quality": "best"}, {"candidates": 1}, {"candidates": 17},
                {"candidates": 2.5}, {"quality": "raw", "candidates": 4},
                {"features": {"Smiling": 0.9}, "candidates": 4}):
        r = ranked.post("/generate", json={"seed": 1, **bad})
        assert r.status_code == 422, (bad, r.text)
        field = "quality" if "quality" in bad and "candidates" not in bad else "candidates"
        assert field in detail(r), (bad, detail(r))


def test_ranked_conditioned_generation_reports_its_candidates(
        make_client: Callable[..., TestClient], ranked_pipeline: Pipeline) -> None:
    client = make_client(pipeline=ranked_pipeline)
    body = client.post("/generate", json={"seed": 4, "count": 2, "quality": "ranked",
                                          "features": {"Smiling": 0.9}}).json()
    _starts, chosen = ranked_pipeline.ranked_starts([4, 5], {"Smiling": 0.9},
                                                    quality="ranked")
    assert chosen is not None
    assert [f["candidate"] for f in body["faces"]] == chosen.tolist()
    assert all(isinstance(f["realism"], float) and f["unmet"] is not None
               for f in body["faces"])
    raw = client.post("/generate", json={"seed": 4, "count": 2, "quality": "raw",
                                         "features": {"Smiling": 0.9}}).json()
    assert all(f["candidate"] is None for f in raw["faces"])


def test_refined_returns_the_refined_latent_its_score_and_refined_conditioned_faces(
        make_client: Callable[..., TestClient], ranked_pipeline: Pipeline) -> None:
    client = make_client(pipeline=ranked_pipeline)
    body = client.post("/generate", json={"seed": 30, "count": 3,
                                          "quality": "refined"}).json()
    want = ranked_pipeline.seeded_latents(range(30, 33), 1.0, "refined")
    assert want.realism is not None
    for i, face in enumerate(body["faces"]):
        assert face["candidate"] is None
        assert face["realism"] == round(float(want.realism[i]), 4)
        z = np.asarray(face["latent"], dtype=np.float32)
        assert np.array_equal(z, want.latents[i])
        assert np.array_equal(decode_image(face["image"]), ranked_pipeline.render(z[None])[0])
    assert client.post("/generate", json={"seed": 30, "count": 3,
                                          "quality": "refined"}).json() == body
    cond = client.post("/generate", json={"seed": 4, "count": 2, "quality": "refined",
                                          "features": {"Smiling": 0.9}}).json()["faces"]
    assert all(f["candidate"] is None and isinstance(f["realism"], float) for f in cond)
    r = make_client().post("/generate", json={"seed": 1, "quality": "refined"})
    assert r.status_code == 422 and detail(r).startswith("quality:"), r.text
    r = client.post("/generate", json={"seed": 1, "quality": "refined", "candidates": 4})
    assert r.status_code == 422 and "candidates" in detail(r), r.text


def test_generators_lists_the_loaded_critic(make_client: Callable[..., TestClient],
                                            ranked_pipeline: Pipeline) -> None:
    assert make_client().get("/generators").json()["critic"] is None
    critic = make_client(pipeline=ranked_pipeline).get("/generators").json()["critic"]
    assert critic["name"] == "tiny-critic" and critic["sha256"] == "4" * 64
    assert critic["generator_sha256"] == ranked_pipeline.generator.sha256
