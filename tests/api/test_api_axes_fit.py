"""POST /axes/fit: teach an axis from marked faces (the issue's contract), and an axis added
with its head is first-class: a probability in `features`, a `features` target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from api_helpers import detail
from fastapi.testclient import TestClient

from tlgan.pipeline import Pipeline
from tlgan.testing import TINY_LATENT, tiny_bundle_with_samples


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: Pipeline) -> Pipeline:
    return tiny_bundle_with_samples(tiny_pipeline, tmp_path_factory.mktemp("b") / "bundle")


def _examples(pipeline: Pipeline, n: int = 40) -> list[dict[str, object]]:
    z = pipeline.seeds_to_latents(range(7000, 7000 + n))
    p = pipeline.label_latents(z)[:, pipeline.attributes.index("Smiling")]
    y = (p > np.median(p)).astype(int)
    return [{"latent": [float(v) for v in zi], "label": int(yi)} for zi, yi in zip(z, y,
                                                                                 strict=True)]


def test_fit_answers_a_unit_direction_a_head_and_stats(
        make_client: Callable[..., TestClient], shipped: Pipeline) -> None:
    client = make_client(pipeline=shipped)
    r = client.post("/axes/fit", json={"name": "Smile_taught", "examples": _examples(shipped)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"name", "direction", "head", "stats"} and body["name"] == "Smile_taught"
    d = np.asarray(body["direction"])
    assert d.shape == (TINY_LATENT,) and abs(np.linalg.norm(d) - 1) < 1e-6
    assert shipped.bundle is not None
    for ref in shipped.bundle.references:
        assert abs(float(d @ shipped.bundle.direction(ref))) < 1e-6
    assert float(d @ shipped.bundle.direction("Smiling")) > 0.5
    assert len(body["head"]["weights"]) == len(body["head"]["mean"]) == 16
    st = body["stats"]
    assert st["examples"] == 40 and st["positives"] == st["negatives"] == 20
    assert 0.5 < st["head_cv_accuracy"] <= 1.0
    assert st["head_cv_accuracy_low"] <= st["head_cv_accuracy"] <= st["head_cv_accuracy_high"]
    assert isinstance(st["near_chance"], bool) and st["teach_method"] == "span-prior"
    r = client.post("/axes/fit", json={"name": "Smile_free", "examples": _examples(shipped),
                                       "orthogonal_to": []})
    assert r.status_code == 200 and r.json()["stats"]["orthogonal_to"] == []


@pytest.mark.parametrize(("change", "field"), [
    (lambda b: b.update(examples=b["examples"][:9]), "examples"),
    (lambda b: b.update(examples=[{**e, "label": 1} for e in b["examples"]]), "examples"),
    (lambda b: b["examples"][3].update(latent=[0.0] * 3), "examples[3].latent"),
    (lambda b: b["examples"][2].update(label=2), "examples.2.label"),
    (lambda b: b.update(name="Smiling"), "name"),
    (lambda b: b.update(name="Male"), "name"),
    (lambda b: b.update(name=""), "name"),
    (lambda b: b.update(orthogonal_to=["Nose"]), "orthogonal_to"),
    (lambda b: b.update(extra=1), "extra"),
])
def test_fit_bad_input_gets_422_naming_the_field(make_client: Callable[..., TestClient],
                                                 shipped: Pipeline, change, field) -> None:  # type: ignore[no-untyped-def]
    client = make_client(pipeline=shipped)
    body = {"name": "New", "examples": _examples(shipped, 20)}
    change(body)
    r = client.post("/axes/fit", json=body)
    assert r.status_code == 422, r.text
    assert field in detail(r) or field in str(r.json()["errors"]), r.json()


def test_fit_without_shipped_samples_says_so(client: TestClient,
                                             tiny_pipeline: Pipeline) -> None:
    r = client.post("/axes/fit", json={"name": "New", "examples": _examples(tiny_pipeline, 20)})
    assert r.status_code == 422 and detail(r).startswith("samples:")


def test_an_axis_added_with_its_head_is_a_feature_and_a_target(
        make_client: Callable[..., TestClient], shipped: Pipeline, tmp_path: Path) -> None:
    from axes.bundle import AxisBundle
    from tlgan.axis_work.teaching import add_to_bundle, teach_axis

    assert shipped.bundle is not None
    folder = tmp_path / "bundle"
    shipped.bundle.save(folder)
    ex = _examples(shipped)
    taught = teach_axis(shipped, "Smile_taught", [e["latent"] for e in ex],
                        [e["label"] for e in ex])
    add_to_bundle(folder, "Smile_taught", taught.raw_direction, taught.head, taught.stats)
    pipe = Pipeline(shipped.generator, shipped.extractor, AxisBundle.load(folder))
    client = make_client(pipeline=pipe)
    assert "Smile_taught" in client.get("/axes").json()["attributes"]
    r = client.post("/generate", json={"seed": 3, "count": 2,
                                       "features": {"Smile_taught": 0.9}})
    assert r.status_code == 200, r.text
    for face in r.json()["faces"]:
        assert "Smile_taught" in face["features"] and face["unmet"] == []


def test_served_schema_states_the_example_latent_length(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    latent = schemas["FitExample"]["properties"]["latent"]
    assert latent["minItems"] == latent["maxItems"] == TINY_LATENT
    examples = schemas["AxesFitRequest"]["properties"]["examples"]
    assert examples["minItems"] == 10 and examples["maxItems"] == 2000


def test_fit_takes_unsure_and_graded_marks(make_client: Callable[..., TestClient],
                                           shipped: Pipeline) -> None:
    client = make_client(pipeline=shipped)
    examples = _examples(shipped)
    for e in examples[30:]:
        e["label"] = None  # not sure: left out, counted
    r = client.post("/axes/fit", json={"name": "Smile_sure", "examples": examples})
    assert r.status_code == 200, r.text
    st = r.json()["stats"]
    assert st["unsure"] == 10 and st["examples"] == 30 and st["graded"] is False
    sure = client.post("/axes/fit", json={"name": "Smile_sure", "examples": examples[:30]})
    assert sure.status_code == 200 and sure.json()["stats"]["unsure"] == 0
    np.testing.assert_allclose(r.json()["direction"], sure.json()["direction"], atol=1e-9)
    graded = _examples(shipped)
    for e in graded[:10]:
        e["label"] = 0.75 if e["label"] == 1 else 0.25
    r = client.post("/axes/fit", json={"name": "Smile_graded", "examples": graded})
    assert r.status_code == 200, r.text
    assert r.json()["stats"]["graded"] is True
    assert r.json()["stats"]["head_fit"].startswith("ridge")
    bad = _examples(shipped, 20)
    bad[4]["label"] = 1.5
    r = client.post("/axes/fit", json={"name": "New", "examples": bad})
    assert r.status_code == 422 and "examples.4.label" in str(r.json()), r.json()
    for e in bad[:15]:
        e["label"] = None
    r = client.post("/axes/fit", json={"name": "New", "examples": bad})
    assert r.status_code == 422 and detail(r).startswith(
        "examples: need at least 10 examples marked (not unsure), got 5"), r.json()
