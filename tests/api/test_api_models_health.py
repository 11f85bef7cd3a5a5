"""GET /axes, /generators, /healthz, /readyz, /stats."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tlgan.pipeline import Pipeline
from tlgan.testing import TINY_ATTRIBUTES


def test_axes_lists_bundle_axes(client: TestClient, tiny_pipeline: Pipeline) -> None:
    r = client.get("/axes")
    assert r.status_code == 200
    body = r.json()
    assert body["bundle"] == tiny_pipeline.bundle_id and body["latent_size"] == 16
    assert [a["name"] for a in body["axes"]] == TINY_ATTRIBUTES
    assert {a["name"] for a in body["axes"] if a["reference"]} == {"Male", "Young"}
    assert body["attributes"] == TINY_ATTRIBUTES
    smiling = next(a for a in body["axes"] if a["name"] == "Smiling")["stats"]
    assert 0.0 <= smiling["auc_holdout"] <= 1.0  # the fit's scalar statistics ...
    assert "coef" not in smiling  # ... without its vectors
    assert smiling["calibration"] == tiny_pipeline.calibration["Smiling"]


def test_axes_show_scalar_stats_and_calibration(make_client: Callable[..., TestClient],
                                                tiny_pipeline: Pipeline) -> None:
    import numpy as np

    from axes.bundle import AxisBundle

    bundle = tiny_pipeline.bundle
    assert bundle is not None
    stats: list[dict[str, object]] = [{"auc_holdout": 0.9, "coef": np.ones(16),
                                       "n_train": 10, "deviance": float("nan"),
                                       "coef_norm": 2.5}
                                      for _ in bundle.names]
    with_stats = AxisBundle(names=list(bundle.names), directions=bundle.directions,
                            raw_directions=bundle.directions, references=list(bundle.references),
                            stats=stats, provenance=dict(bundle.provenance))
    piped = Pipeline(generator=tiny_pipeline.generator, extractor=tiny_pipeline.extractor,
                     bundle=with_stats)
    axes = make_client(pipeline=piped).get("/axes").json()["axes"]
    smiling = next(a for a in axes if a["name"] == "Smiling")
    calibration = smiling["stats"].pop("calibration")
    assert abs(calibration - 2.5) < 1e-6  # coef_norm x (raw . axis), raw == axis here
    assert smiling["stats"] == {"auc_holdout": 0.9, "n_train": 10, "deviance": None,
                                "coef_norm": 2.5}


def test_generators_marks_loaded(client: TestClient) -> None:
    body = client.get("/generators").json()
    assert body["loaded"]["name"] == "tiny-dcgan" and body["loaded"]["latent_size"] == 16
    names = {g["name"]: g["loaded"] for g in body["generators"]}
    assert names.get("dcgan-digiface64") is False


def test_ready_only_after_lifespan(tiny_pipeline: Pipeline) -> None:
    app = create_app(Settings(), pipeline=tiny_pipeline)
    cold = TestClient(app)  # no context manager: the lifespan has not run
    assert cold.get("/healthz").json() == {"status": "ok"}
    r = cold.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "loading"
    r = cold.post("/generate", json={"seed": 1})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    with TestClient(app) as warm:
        r = warm.get("/readyz")
        assert r.status_code == 200
        assert r.json() == {"status": "ready", "generator": "tiny-dcgan",
                            "extractor": "tiny-extractor", "bundle": tiny_pipeline.bundle_id}
    assert cold.get("/readyz").status_code == 503  # after shutdown


def test_stats_count_batches(client: TestClient) -> None:
    client.post("/generate", json={"seed": 1, "count": 3})
    client.post("/edit", json={"latent": [0.0] * 16, "with_features": False})
    s = client.get("/stats").json()
    assert s["ready"] is True and s["server_errors"] == 0
    b = s["batcher"]
    assert b["jobs"] == 2 and b["faces"] == 4 and b["batches"] == 2
    assert b["batch_sizes"] == {"3": 1, "1": 1} and b["queue_depth"] == 0


def test_batch_hook_is_called(tiny_pipeline: Pipeline) -> None:
    seen = []
    app = create_app(Settings(), pipeline=tiny_pipeline)
    app.state.on_batch = seen.append
    with TestClient(app) as c:
        c.post("/generate", json={"seed": 1, "count": 2, "with_features": False})
    assert [(i.faces, i.jobs, i.with_features) for i in seen] == [(2, 1, False)]
