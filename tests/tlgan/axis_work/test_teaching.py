"""tlgan.axis_work.teaching and the first-class added axes: teach from marked latents,
add/teach/import into a bundle with refusal rules, heads as extra feature columns, with tiny
seeded models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from axes.bundle import AxisBundle
from tlgan.axis_work.teaching import TaughtAxis, read_direction, read_examples, teach_axis
from tlgan.axis_work.workflow import add_axis, read_labels
from tlgan.cli.main import cli
from tlgan.pipeline import Pipeline
from tlgan.testing import tiny_bundle_with_samples


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: Pipeline) -> Pipeline:
    """The tiny pipeline with its bundle saved with a shipped sample subset."""
    return tiny_bundle_with_samples(tiny_pipeline, tmp_path_factory.mktemp("b") / "bundle")


def _marks(pipeline: Pipeline, n: int = 60, attr: str = "Smiling",
           start: int = 7000) -> tuple[np.ndarray, np.ndarray]:
    z = pipeline.seeds_to_latents(range(start, start + n))
    p = pipeline.label_latents(z)[:, pipeline.attributes.index(attr)]
    return z, (p > np.median(p)).astype(int)


def test_teach_axis_recovers_a_known_attribute(shipped: Pipeline) -> None:
    z, y = _marks(shipped)
    taught = teach_axis(shipped, "Smile_taught", z, y)
    bundle = shipped.bundle
    assert bundle is not None
    assert taught.direction.shape == (16,) and abs(np.linalg.norm(taught.direction) - 1) < 1e-9
    assert float(taught.direction @ bundle.direction("Smiling")) > 0.7
    for ref in bundle.references:  # default: orthogonal to the references
        assert abs(float(taught.direction @ bundle.direction(ref))) < 1e-6  # float32 axes
    st = taught.stats
    assert st["examples"] == 60 and st["positives"] + st["negatives"] == 60
    assert st["head_cv_accuracy"] > 0.7 and st["samples_scored"] == 1500
    assert st["orthogonal_to"] == ["Male", "Young"] and st["coef_norm"] > 0
    json.dumps(taught.to_dict())  # plain JSON
    free = teach_axis(shipped, "Smile_taught", z, y, orthogonal_to=[])
    assert free.stats["orthogonal_to"] == [] and abs(free.direction @ free.raw_direction - 1) < 1e-9
    eyes = teach_axis(shipped, "Smile_taught", z, y, orthogonal_to=["Eyeglasses"])
    assert abs(float(eyes.direction @ bundle.direction("Eyeglasses"))) < 1e-9


@pytest.mark.parametrize(("change", "match"), [
    (lambda z, y: (z, np.ones_like(y)), r"examples: need at least 2 examples of each label"),
    (lambda z, y: (z[:5], y[:5]), r"examples: need 10\.\.2000 examples"),
    (lambda z, y: ([*z[:-1], np.zeros(3)], y), r"examples\[19\]\.latent: expected 16 numbers"),
    (lambda z, y: (z, np.where(np.arange(len(y)) == 4, 2, y)), r"examples\[4\]\.label"),
])
def test_teach_axis_bad_examples_name_the_field(shipped: Pipeline, change, match) -> None:  # type: ignore[no-untyped-def]
    z, y = _marks(shipped, 20)
    bad_z, bad_y = change(z, y)
    with pytest.raises(ValueError, match=match):
        teach_axis(shipped, "New", bad_z, bad_y)


def test_teach_axis_refuses_existing_names_unknown_axes_and_missing_samples(
        shipped: Pipeline, tiny_pipeline: Pipeline) -> None:
    z, y = _marks(shipped, 20)
    for name in ("Smiling", "Male"):
        with pytest.raises(ValueError, match=f"name: '{name}' is already an axis"):
            teach_axis(shipped, name, z, y)
    with pytest.raises(ValueError, match="orthogonal_to: unknown axis"):
        teach_axis(shipped, "New", z, y, orthogonal_to=["Nose"])
    with pytest.raises(ValueError, match="samples: the loaded axis bundle ships no sample"):
        teach_axis(tiny_pipeline, "New", z, y)  # built in memory: no samples.npz


def test_an_added_axis_with_a_head_is_a_feature_and_a_generation_target(
        shipped: Pipeline, tmp_path: Path) -> None:
    from tlgan.axis_work.teaching import add_to_bundle

    assert shipped.bundle is not None and shipped.bundle.source is not None
    folder = tmp_path / "bundle"
    shipped.bundle.save(folder)
    z, y = _marks(shipped)
    taught = teach_axis(shipped, "Smile_taught", z, y)
    new = add_to_bundle(folder, "Smile_taught", taught.raw_direction, taught.head, taught.stats)
    assert new.has_samples and new.head("Smile_taught") is not None
    pipe = Pipeline(shipped.generator, shipped.extractor, new)
    assert pipe.attributes[-1] == "Smile_taught" and pipe.head_axes == ["Smile_taught"]
    probs = pipe.label_latents(z[:8])
    assert probs.shape == (8, 6)
    np.testing.assert_allclose(probs[:, -1], taught.head.predict_proba(pipe.embed_latents(z[:8])),
                               atol=1e-5)
    assert "Smile_taught" in pipe.features_dict(probs[0])
    # a features target: faces are moved until the head agrees
    result = pipe.generate_conditioned([1, 2], {"Smile_taught": 0.9})
    assert result.probs.shape == (2, 6)
    start = pipe.label_latents(pipe.seeds_to_latents([1, 2]))[:, -1]
    assert np.all(np.abs(result.probs[:, -1] - 0.9) <= np.abs(start - 0.9) + 1e-6)
    assert result.unmet == [[], []]
    assert "Smile_taught" in pipe.held_locks(["Smile_taught"])
    # and the axes report measures its response curve with its head
    from tlgan.axis_work.axis_report import axis_report

    summary = axis_report(pipe, new, tmp_path / "report", faces=2, curve_faces=8,
                          axes=["Smile_taught"], progress=False)
    assert summary["axes"][0]["target_delta"] > 0
    assert (tmp_path / "report" / "curves" / "Smile_taught.png").is_file()


def _labelled(tmp_path: Path, pipeline: Pipeline, n: int = 60) -> Path:
    z, y = _marks(pipeline, n)
    images, _ = pipeline.render_and_label(z, with_features=False)
    folder = tmp_path / "faces"
    folder.mkdir()
    rows = ["image,label"]
    for i, (img, label) in enumerate(zip(images, y, strict=True)):
        Image.fromarray(img).save(folder / f"f{i}.png")
        rows.append(f"f{i}.png,{label}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_add_axis_uses_the_shipped_samples_and_refuses_to_overwrite(
        shipped: Pipeline, tmp_path: Path) -> None:
    assert shipped.bundle is not None
    folder = tmp_path / "bundle"
    shipped.bundle.save(folder)
    faces = _labelled(tmp_path, shipped)
    labelled = read_labels(tmp_path / "labels.csv", faces, "x")
    assert shipped.extractor is not None
    new, figures = add_axis("Smile_mine", labelled, folder, shipped.extractor, progress=False)
    assert figures["samples"] == 1500 and new.has_samples
    before = AxisBundle.load(folder)
    with pytest.raises(ValueError, match="already has an axis 'Smile_mine'; pass --replace"):
        add_axis("Smile_mine", labelled, folder, shipped.extractor, progress=False)
    with pytest.raises(ValueError, match=r"'Male' is a reference axis.*--replace-reference"):
        add_axis("Male", labelled, folder, shipped.extractor, progress=False, replace=True)
    assert AxisBundle.load(folder) == before  # nothing written
    add_axis("Smile_mine", labelled, folder, shipped.extractor, progress=False, replace=True)
    assert AxisBundle.load(folder).names.count("Smile_mine") == 1
    # --orthogonal-to: it holds Male only, recorded with it
    new, _ = add_axis("Smile_m", labelled, folder, shipped.extractor, progress=False,
                      orthogonal_to=["Male"])
    own = new.direction("Smile_m").astype(np.float64)
    assert new.held_references("Smile_m") == ["Male"]
    assert abs(float(own @ new.raw_directions[new.index("Male")])) < 1e-6
    assert abs(float(own @ new.direction("Young"))) > 1e-3
    with pytest.raises(ValueError, match="orthogonal_to: 'Nose' is not another axis"):
        add_axis("Smile_n", labelled, folder, shipped.extractor, progress=False,
                 orthogonal_to=["Nose"])


def test_read_examples_jsonl_and_csv(shipped: Pipeline, tmp_path: Path) -> None:
    jl = tmp_path / "m.jsonl"
    latent = json.dumps([0.5] * 16)
    jl.write_text(f'{{"seed": 3, "label": 1}}\n\n{{"latent": {latent}, "label": 0}}\n')
    z, y = read_examples(jl, shipped)
    np.testing.assert_array_equal(z[0], shipped.seeds_to_latents([3])[0])
    assert z.shape == (2, 16) and y.tolist() == [1, 0]
    csv_file = tmp_path / "m.csv"
    csv_file.write_text("seed,label\n4,1\n5,0\n")
    z, y = read_examples(csv_file, shipped)
    assert z.shape == (2, 16) and y.tolist() == [1, 0]
    csv_file.write_text("seed,label\n4,yes\n")
    with pytest.raises(ValueError, match=r"examples: .*m.csv line 2: label 'yes'"):
        read_examples(csv_file, shipped)
    jl.write_text('{"latent": [1, 2], "label": 1}\n')
    with pytest.raises(ValueError, match=r"examples: .* example 1 has a latent of shape \(2,\)"):
        read_examples(jl, shipped)
    bad = tmp_path / "d.json"
    bad.write_text('{"direction": [1, 2]}')
    with pytest.raises(ValueError, match="direction: expected 16 finite numbers"):
        read_direction(bad, 16)
    bad.write_text(json.dumps({"direction": [1.0] * 16, "head": {"weights": [1]}}))
    with pytest.raises(ValueError, match="head: d is missing head keys"):
        read_direction(bad, 16)


def _with_bundle(shipped: Pipeline, folder: Path) -> Pipeline:
    """The shipped models with the bundle in ``folder``."""
    return Pipeline(shipped.generator, shipped.extractor, AxisBundle.load(folder))


def _cli_bundle(shipped: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped bundle in ``tmp_path/bundle``, which the CLI's commands load
    with the shipped models (``tlgan.assembly.load_pipeline`` replaced)."""
    import tlgan.assembly

    assert shipped.bundle is not None
    folder = tmp_path / "bundle"
    shipped.bundle.save(folder)

    def fake_load(**kwargs):
        return _with_bundle(shipped, kwargs["bundle"])

    monkeypatch.setattr(tlgan.assembly, "load_pipeline", fake_load)
    return folder


def _write_marks(path: Path, z: np.ndarray, labels: np.ndarray) -> Path:
    """Marked latents as ``tlgan axes teach --examples`` reads them (JSON lines)."""
    path.write_text("".join(json.dumps({"latent": [float(v) for v in zi], "label": int(yi)})
                            + "\n" for zi, yi in zip(z, labels, strict=True)))
    return path


def _import_via_cli(runner: CliRunner, taught: TaughtAxis, exported: Path, name: str,
                    folder: Path) -> AxisBundle:
    """``taught`` exported to ``exported`` as POST /axes/fit answers it, then imported into
    the bundle ``folder`` as ``name`` with ``tlgan axes import``; the bundle after."""
    exported.write_text(json.dumps(taught.to_dict()))
    res = runner.invoke(cli, ["axes", "import", name, "--direction", str(exported),
                              "--bundle", str(folder)])
    assert res.exit_code == 0, res.output
    return AxisBundle.load(folder)


def test_cli_teach_then_import_add_first_class_axes(shipped: Pipeline, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _cli_bundle(shipped, tmp_path, monkeypatch)
    z, y = _marks(shipped, 40)
    marks = _write_marks(tmp_path / "marks.jsonl", z, y)
    runner = CliRunner()
    res = runner.invoke(cli, ["axes", "teach", "Smile_t", "--examples", str(marks),
                              "--bundle", str(folder)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # notes and warnings go to stderr
    assert out["examples"] == 40 and out["head_cv_accuracy"] > 0.6
    b = AxisBundle.load(folder)
    st = b.stats[b.index("Smile_t")]
    assert st["source"] == "tlgan axes teach" and st["examples"] == 40 and b.head("Smile_t")
    res = runner.invoke(cli, ["axes", "teach", "Smile_t", "--examples", str(marks),
                              "--bundle", str(folder)])
    assert res.exit_code != 0 and "--replace" in res.output
    # export as POST /axes/fit answers, import under another name
    taught = teach_axis(_with_bundle(shipped, folder), "Smile_x", z, y)
    exported = tmp_path / "smile.json"
    b = _import_via_cli(runner, taught, exported, "Smile_x", folder)
    assert b.head("Smile_x") is not None and b.stats[b.index("Smile_x")]["examples"] == 40
    assert abs(float(b.direction("Smile_x") @ taught.direction) - 1) < 1e-5
    assert "Smile_x" in _with_bundle(shipped, folder).attributes
    res = runner.invoke(cli, ["axes", "import", "Young", "--direction", str(exported),
                              "--bundle", str(folder), "--replace"])
    assert res.exit_code != 0 and "--replace-reference" in res.output


def _noise_marks(pipeline: Pipeline, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    z = pipeline.seeds_to_latents(range(8000, 8000 + n))
    return z, np.random.default_rng(3).permutation(np.arange(n) % 2)


def test_teach_axis_flags_marks_near_chance(shipped: Pipeline) -> None:
    z, y = _noise_marks(shipped)
    st = teach_axis(shipped, "Noise", z, y).stats
    assert st["near_chance"] is True and st["head_cv_accuracy_low"] <= 0.5
    assert "near chance" in st["warning"]
    z, y = _marks(shipped)
    st = teach_axis(shipped, "Smile_taught", z, y).stats
    assert st["near_chance"] is False and st["warning"] is None
    assert 0.5 < st["head_cv_accuracy_low"] <= st["head_cv_accuracy"] <= st[
        "head_cv_accuracy_high"]


def test_teach_axis_holds_the_raw_direction_of_a_held_reference(shipped: Pipeline) -> None:
    bundle = shipped.bundle
    assert bundle is not None
    z, y = _marks(shipped, attr="Young")
    raw_male = np.asarray(bundle.raw_directions[bundle.index("Male")], dtype=np.float64)
    taught = teach_axis(shipped, "Older", z, 1 - y, orthogonal_to=["Male"])
    # held to first order: orthogonal to the direction along which Male's logit changes
    assert abs(float(taught.direction @ raw_male)) < 1e-9
    assert float(taught.direction @ -bundle.direction("Young")) > 0.3  # Young may change
    assert taught.stats["teach_method"] == "span-prior" and 0 <= taught.stats["span_share"] <= 1
    plain = teach_axis(shipped, "Older", z, 1 - y, orthogonal_to=["Male"], method="plain")
    assert abs(float(plain.direction @ bundle.direction("Male"))) < 1e-9
    assert plain.stats["teach_method"] == "plain"
    # holding Young while teaching its opposite: the answer says what that costs
    held = teach_axis(shipped, "Older", z, 1 - y)
    assert held.stats["reference_correlation"]["Young"] < -0.7
    assert any("leave Young out of orthogonal_to" in n for n in held.stats["notes"])
    with pytest.raises(ValueError, match="method: must be one of"):
        teach_axis(shipped, "Older", z, y, method="magic")


def test_cli_teach_and_add_refuse_near_chance_marks_without_force(
        shipped: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _cli_bundle(shipped, tmp_path, monkeypatch)
    z, y = _noise_marks(shipped)
    marks = _write_marks(tmp_path / "marks.jsonl", z, y)
    before = AxisBundle.load(folder)
    runner = CliRunner()
    args = ["axes", "teach", "Noise", "--examples", str(marks), "--bundle", str(folder)]
    res = runner.invoke(cli, args)
    assert res.exit_code == 2, res.output
    assert "near chance" in res.output and "--force" in res.output
    assert "Traceback" not in res.output and AxisBundle.load(folder) == before
    res = runner.invoke(cli, [*args, "--force"])
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "Noise" in AxisBundle.load(folder).names
    # tlgan axes add: the same rule for labelled images
    faces = _labelled(tmp_path, shipped, 20)
    rows = (tmp_path / "labels.csv").read_text().splitlines()
    (tmp_path / "labels.csv").write_text("\n".join(
        [rows[0]] + [f"{r.split(',')[0]},{int(v)}" for r, v in zip(rows[1:], y, strict=True)])
        + "\n")
    labelled = read_labels(tmp_path / "labels.csv", faces, "x")
    assert shipped.extractor is not None
    with pytest.raises(ValueError, match=r"labels: .*near chance.*--force"):
        add_axis("Noise_add", labelled, folder, shipped.extractor, progress=False)
    assert "Noise_add" not in AxisBundle.load(folder).names
    _, figures = add_axis("Noise_add", labelled, folder, shipped.extractor, progress=False,
                          force=True)
    assert figures["near_chance"] is True and "Noise_add" in AxisBundle.load(folder).names


def test_cli_teach_and_import_keep_orthogonal_to_per_axis(
        shipped: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _cli_bundle(shipped, tmp_path, monkeypatch)
    z, y = _marks(shipped, attr="Young")
    marks = _write_marks(tmp_path / "marks.jsonl", z, 1 - y)
    runner = CliRunner()
    res = runner.invoke(cli, ["axes", "teach", "Older", "--examples", str(marks),
                              "--bundle", str(folder), "--orthogonal-to", "Male"])
    assert res.exit_code == 0, res.output
    b = AxisBundle.load(folder)
    taught = teach_axis(shipped, "Older", z, 1 - y, orthogonal_to=["Male"])
    # saved as taught: it holds Male only, so it may change Young
    assert abs(float(b.direction("Older") @ taught.direction) - 1) < 1e-5
    assert float(b.direction("Older") @ -b.direction("Young")) > 0.3
    assert b.held_references("Older") == ["Male"]
    # a lock on Young takes Young's part out of an Older move; without it Young may change
    pipe = _with_bundle(shipped, folder)
    z0 = z[0]
    free = pipe.edit(z0, {"Older": 2.0}).astype(np.float64) - z0
    locked = pipe.edit(z0, {"Older": 2.0}, locked=["Young"]).astype(np.float64) - z0
    young = b.direction("Young").astype(np.float64)
    assert abs(float(free @ young)) > 0.5 and abs(float(locked @ young)) < 1e-4
    from tlgan.axis_work.axis_report import axis_report  # the report says what each axis holds

    summary = axis_report(pipe, b, tmp_path / "report", faces=1, curve_faces=4,
                          axes=["Older", "Smiling"], progress=False)
    assert [r["holds"] for r in summary["axes"]] == [["Male"], ["Male", "Young"]]
    # import honours the exported answer's orthogonal_to
    exported = tmp_path / "older.json"
    b = _import_via_cli(runner, taught, exported, "Older2", folder)
    assert abs(float(b.direction("Older2") @ taught.direction) - 1) < 1e-5
    assert b.held_references("Older2") == ["Male"]
    bad = json.loads(exported.read_text())
    bad["stats"]["orthogonal_to"] = ["Nose"]
    exported.write_text(json.dumps(bad))
    res = runner.invoke(cli, ["axes", "import", "Older3", "--direction", str(exported),
                              "--bundle", str(folder)])
    assert res.exit_code == 2 and "orthogonal_to: 'Nose' is not another axis" in res.output


def test_teach_axis_head_features_and_span_keep(shipped: Pipeline) -> None:
    z, y = _marks(shipped)
    st = {f: teach_axis(shipped, "Smile_taught", z, y, head_features=f)
          for f in ("auto", "attributes", "embeddings")}
    by = st["auto"].stats["head_cv_accuracy_by_features"]
    assert set(by) == {"attributes", "embeddings"}
    best = "attributes" if by["attributes"] >= by["embeddings"] else "embeddings"
    assert st["auto"].stats["head_features"] == best  # chosen on the marks alone
    assert st["attributes"].stats["head_features"] == "attributes"
    # the attribute head is a head on embeddings: it scores the marks as its fit did
    emb = shipped.embed_latents(z)
    acc = float(np.mean((st["attributes"].head.predict_proba(emb) > 0.5) == y))
    assert acc > 0.75
    assert float(st["attributes"].direction @ st["embeddings"].direction) > 0.5
    inside = teach_axis(shipped, "Smile_taught", z, y, span_keep=0.0)
    assert inside.stats["span_keep"] == 0.0
    with pytest.raises(ValueError, match="head_features: must be one of"):
        teach_axis(shipped, "Smile_taught", z, y, head_features="pixels")
    with pytest.raises(ValueError, match=r"span_keep: must be a number in \[0, 1\]"):
        teach_axis(shipped, "Smile_taught", z, y, span_keep=1.5)


def test_teach_axis_span_terms_keep_the_axes_the_marks_pick(shipped: Pipeline) -> None:
    bundle = shipped.bundle
    assert bundle is not None
    z, y = _marks(shipped, attr="Young")
    default = teach_axis(shipped, "Older", z, 1 - y, orthogonal_to=["Male"])
    assert default.stats["span_terms"] is None and default.stats["span_terms_cv_auc"] is None
    every = teach_axis(shipped, "Older", z, 1 - y, orthogonal_to=["Male"], span_terms=1000)
    assert np.allclose(every.direction, default.direction)  # all terms: the whole span
    # one term, nothing kept outside: the raw direction is one of the axes the bundle knows
    one = teach_axis(shipped, "Older", z, 1 - y, orthogonal_to=["Male"], span_terms=1,
                     span_keep=0.0)
    known = [np.asarray(bundle.raw_directions[bundle.index(n)] if n in bundle.references
                        else bundle.direction(n), dtype=np.float64)
             for n in bundle.names if n != "Male"]
    cosines = [abs(float(one.raw_direction @ k)) / float(np.linalg.norm(k)) for k in known]
    assert max(cosines) > 0.999 and one.stats["span_terms"] == 1
    raw_male = np.asarray(bundle.raw_directions[bundle.index("Male")], dtype=np.float64)
    assert abs(float(one.direction @ raw_male)) < 1e-9  # still holds Male
    # "cv": chosen by the held-out marks' AUC, recorded per candidate
    cv = teach_axis(shipped, "Older", z, 1 - y, orthogonal_to=["Male"], span_terms="cv")
    aucs = cv.stats["span_terms_cv_auc"]
    assert set(aucs) == {"None", "13", "8", "5", "3", "2", "1"}
    assert all(0.0 <= a <= 1.0 for a in aucs.values())
    assert aucs[str(cv.stats["span_terms"])] == max(aucs.values())
    for bad in (0, "all", True, 2.5):
        with pytest.raises(ValueError, match="span_terms: must be None, 'cv' or an integer"):
            teach_axis(shipped, "Older", z, 1 - y, span_terms=bad)  # type: ignore[arg-type]


def test_unsure_marks_are_left_out_and_counted(shipped: Pipeline) -> None:
    z, y = _marks(shipped)
    sure = teach_axis(shipped, "Smile_taught", z[:40], y[:40])
    labels: list[float | None] = [*y[:40].tolist(), *([None] * 10), *([np.nan] * 10)]
    with_unsure = teach_axis(shipped, "Smile_taught", z, labels)
    np.testing.assert_allclose(with_unsure.direction, sure.direction)  # the same fit
    st = with_unsure.stats
    assert st["unsure"] == 20 and st["examples"] == 40 and st["graded"] is False
    assert st["positives"] + st["negatives"] == 40 and st["head_fit"] == "logistic"
    assert sure.stats["unsure"] == 0
    with pytest.raises(ValueError, match=r"examples: need at least 10 examples marked \(not "
                                         r"unsure\), got 9 \(51 unsure\)"):
        teach_axis(shipped, "Smile_taught", z, [*y[:9].tolist(), *([None] * 51)])
    with pytest.raises(ValueError, match=r"examples\[3\]\.label: must be 0, 1, a grade in"):
        teach_axis(shipped, "Smile_taught", z, [*y[:3].tolist(), "yes", *y[4:].tolist()])


def test_graded_marks_teach_with_a_ridge_head(shipped: Pipeline) -> None:
    bundle = shipped.bundle
    assert bundle is not None
    z = shipped.seeds_to_latents(range(7000, 7060))
    p = shipped.label_latents(z)[:, shipped.attributes.index("Smiling")]
    grades = np.searchsorted(np.quantile(p, [0.2, 0.4, 0.6, 0.8]), p) / 4.0
    taught = teach_axis(shipped, "Smile_graded", z, grades)
    st = taught.stats
    assert st["graded"] is True and st["head_fit"].startswith("ridge")
    assert st["middle"] == int(np.sum(grades == 0.5)) and st["positives"] == int(
        np.sum(grades > 0.5))
    assert float(taught.direction @ bundle.direction("Smiling")) > 0.7
    for ref in bundle.references:
        assert abs(float(taught.direction @ bundle.direction(ref))) < 1e-6
    # the head orders the marked faces by their grade; its accuracy counts the sided marks
    emb = shipped.embed_latents(z)
    assert np.corrcoef(taught.head.predict_proba(emb), grades)[0, 1] > 0.7
    assert st["head_cv_accuracy"] > 0.7 and st["near_chance"] is False
    cv = teach_axis(shipped, "Smile_graded", z, grades, span_terms="cv")
    aucs = cv.stats["span_terms_cv_auc"]  # "cv" folds by the grades' side of 0.5
    assert set(aucs) == {"None", "13", "8", "5", "3", "2", "1"}
    assert aucs[str(cv.stats["span_terms"])] == max(aucs.values())
    with pytest.raises(ValueError, match="head_features: graded marks are fitted on the"):
        teach_axis(shipped, "Smile_graded", z, grades, head_features="attributes")


def test_read_examples_reads_grades_and_unsure_marks(shipped: Pipeline, tmp_path: Path) -> None:
    jl = tmp_path / "m.jsonl"
    jl.write_text('{"seed": 3, "label": null}\n{"seed": 4, "label": 0.25}\n'
                  '{"seed": 5, "label": "unsure"}\n{"seed": 6, "label": true}\n')
    z, y = read_examples(jl, shipped)
    assert z.shape == (4, 16) and np.isnan(y[0]) and np.isnan(y[2])
    assert y[1] == 0.25 and y[3] == 1.0
    csv_file = tmp_path / "m.csv"
    csv_file.write_text("seed,label\n4,?\n5,0.75\n6,0\n")
    z, y = read_examples(csv_file, shipped)
    assert np.isnan(y[0]) and y[1:].tolist() == [0.75, 0.0]
    for bad in ("1.5", "nan", "-0.25"):
        csv_file.write_text(f"seed,label\n4,{bad}\n")
        with pytest.raises(ValueError, match=rf"m.csv line 2: label '{bad}' is not 0/1, a grade"):
            read_examples(csv_file, shipped)


def test_cli_teach_reads_graded_and_unsure_marks(shipped: Pipeline, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _cli_bundle(shipped, tmp_path, monkeypatch)
    z, y = _marks(shipped, 50)
    labels: list[object] = [0.75 if v else 0.25 for v in y[:10]] + y[10:40].tolist()
    labels += [None] * 5 + ["unsure"] * 5
    marks = tmp_path / "marks.jsonl"
    marks.write_text("".join(json.dumps({"latent": [float(v) for v in zi], "label": lab}) + "\n"
                             for zi, lab in zip(z, labels, strict=True)))
    res = CliRunner().invoke(cli, ["axes", "teach", "Smile_g", "--examples", str(marks),
                                   "--bundle", str(folder), "--force"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["examples"] == 40 and out["unsure"] == 10 and out["graded"] is True
    b = AxisBundle.load(folder)
    st = b.stats[b.index("Smile_g")]
    assert st["unsure"] == 10 and st["head_fit"].startswith("ridge") and b.head("Smile_g")
