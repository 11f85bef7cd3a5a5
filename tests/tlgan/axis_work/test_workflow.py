"""Sample cache -> fit -> bundle -> add an axis -> report, with tiny seeded models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from axes.bundle import AxisBundle
from axes.sample_writer import work_dir_for
from axes.samples import load_samples
from tlgan.axis_work.axis_report import axis_report
from tlgan.axis_work.sampling import build_sample_cache
from tlgan.axis_work.workflow import add_axis, fit_bundle, read_labels
from tlgan.cli.main import cli
from tlgan.pipeline import Pipeline


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: Pipeline) -> Path:
    out = tmp_path_factory.mktemp("samples") / "cache"
    build_sample_cache(tiny_pipeline.generator, tiny_pipeline.extractor, out, n=1500, seed=0,
                       chunk=512, progress=False)
    return out


def test_cache_holds_seeded_samples_and_provenance(cache_dir: Path,
                                                   tiny_pipeline: Pipeline) -> None:
    cache = load_samples(cache_dir)
    assert cache.z.shape == (1500, 16) and cache.probs.shape == (1500, 5)
    assert cache.embeddings.shape == (1500, 16)
    np.testing.assert_array_equal(cache.z[7], tiny_pipeline.seeds_to_latents([7])[0])
    np.testing.assert_allclose(cache.probs[:4], tiny_pipeline.label_latents(cache.z[:4]),
                               atol=1e-5)
    assert cache.config["generator"] == "tiny-dcgan" and cache.config["n"] == 1500
    assert not work_dir_for(cache_dir).exists()


def test_interrupted_sampling_resumes_to_the_same_cache(tmp_path: Path, cache_dir: Path,
                                                        tiny_pipeline: Pipeline) -> None:
    out = tmp_path / "cache"
    gen, ext = tiny_pipeline.generator, tiny_pipeline.extractor
    calls = {"n": 0}
    original = gen.render_tensor

    def flaky(z):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:  # first batch of the second chunk (2 batches of 256 per chunk)
            raise KeyboardInterrupt
        return original(z)

    gen.render_tensor = flaky  # type: ignore[method-assign]
    try:
        with pytest.raises(KeyboardInterrupt):
            build_sample_cache(gen, ext, out, n=1500, chunk=512, progress=False)
    finally:
        del gen.render_tensor
    assert not out.exists()  # never a half-written artifact
    assert len(list(work_dir_for(out).glob("chunk-*.npz"))) == 1
    build_sample_cache(gen, ext, out, n=1500, chunk=512, progress=False)
    a, b = load_samples(out), load_samples(cache_dir)
    np.testing.assert_array_equal(a.z, b.z)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)


def test_fit_writes_an_orthogonalized_bundle(tmp_path: Path, cache_dir: Path) -> None:
    bundle = fit_bundle(cache_dir, tmp_path / "bundle", progress=False)
    loaded = AxisBundle.load(tmp_path / "bundle", expect_generator="tiny-dcgan",
                             expect_latent_size=16)
    assert loaded.names == bundle.names and loaded.references == ["Male", "Young"]
    refs = loaded.directions[[loaded.index("Male"), loaded.index("Young")]]
    others = loaded.directions[[loaded.index(n) for n in ("Smiling", "Eyeglasses")]]
    assert np.abs(others @ refs.T).max() < 1e-5
    assert loaded.provenance["samples_id"] == load_samples(cache_dir).id
    with pytest.raises(ValueError, match="reference: Nose"):
        fit_bundle(cache_dir, tmp_path / "b2", references=["Nose"], progress=False)


def _labelled_folder(tmp_path: Path, pipeline: Pipeline, n: int = 160) -> Path:
    """Faces rendered by the tiny generator, labelled by the tiny extractor's Smiling."""
    z = pipeline.seeds_to_latents(range(5000, 5000 + n))
    images, probs = pipeline.render_and_label(z)
    assert probs is not None
    col = pipeline.attributes.index("Smiling")
    folder = tmp_path / "faces"
    folder.mkdir()
    rows = ["image,label"]
    for i, (img, p) in enumerate(zip(images, probs[:, col], strict=True)):
        Image.fromarray(img).save(folder / f"f{i}.png")
        rows.append(f"f{i}.png,{int(p > 0.5)}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_add_axis_end_to_end_recovers_a_known_attribute(tmp_path: Path, cache_dir: Path,
                                                        tiny_pipeline: Pipeline) -> None:
    bundle_dir = tmp_path / "bundle"
    fit_bundle(cache_dir, bundle_dir, progress=False)
    folder = _labelled_folder(tmp_path, tiny_pipeline)
    labelled = read_labels(tmp_path / "labels.csv", folder, "Smiling_new")
    new, figures = add_axis("Smiling_new", labelled, bundle_dir, tiny_pipeline.extractor,
                            progress=False)
    reloaded = AxisBundle.load(bundle_dir)
    assert "Smiling_new" in reloaded.names and reloaded.id == new.id
    cos = float(reloaded.direction("Smiling_new") @ reloaded.direction("Smiling"))
    assert cos > 0.7, cos
    for ref in ("Male", "Young"):
        assert abs(float(reloaded.direction("Smiling_new") @ reloaded.direction(ref))) < 1e-5
    assert figures["total_s"] > 0 and figures["head_val_auc"] > 0.8


def test_read_labels_errors_name_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    bad = tmp_path / "l.csv"
    bad.write_text("image,label\na.png,maybe\n")
    with pytest.raises(ValueError, match=r"l.csv line 2: label 'maybe'"):
        read_labels(bad, tmp_path, "X")
    bad.write_text("image,label\nmissing.png,1\n")
    with pytest.raises(ValueError, match=r"line 2: image .*missing.png is missing"):
        read_labels(bad, tmp_path, "X")
    attr = tmp_path / "list_attr.txt"
    attr.write_text("1\nSmiling Male\na.png 1 -1\n")
    with pytest.raises(ValueError, match="no column 'Bangs'"):
        read_labels(attr, tmp_path, "Bangs")


@pytest.mark.slow
def test_report_renders_strips_curves_heatmaps_and_summary(tmp_path: Path, cache_dir: Path,
                                                           tiny_pipeline: Pipeline) -> None:
    bundle = fit_bundle(cache_dir, tmp_path / "bundle", progress=False)
    pipe = Pipeline(tiny_pipeline.generator, tiny_pipeline.extractor, bundle)
    summary = axis_report(pipe, bundle, tmp_path / "report", faces=2, curve_faces=8,
                          face_faces=4, axes=["Smiling", "Male"], progress=False)
    for rel in ("strips/Smiling.png", "curves/Smiling.png", "strips/Male.png",
                "cosine_raw.png", "cosine_orthogonalized.png", "summary.md", "summary.json"):
        path = tmp_path / "report" / rel
        assert path.is_file() and path.stat().st_size > 0, rel
    smiling = next(r for r in summary["axes"] if r["axis"] == "Smiling")
    assert smiling["target_delta"] > 0  # moving + along Smiling raises P(Smiling)
    assert "drift_Male_raw" in smiling and "drift_Male_ortho" in smiling
    assert "| Smiling |" in (tmp_path / "report" / "summary.md").read_text()
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["bundle"] == bundle.id
    # per face: the other references' change under +-3, open loop and held (#28)
    from PIL import Image

    with Image.open(tmp_path / "report" / "faces" / "Smiling.png") as im:
        assert im.format == "PNG" and im.width > im.height > 200  # two panels side by side
        assert len(np.unique(np.asarray(im.convert("L")))) > 20  # drawn, not blank
    with Image.open(tmp_path / "report" / "faces" / "Male.png") as im:
        assert im.width < 500  # one panel: Young
    assert smiling["frame_face_off"] > 0 and "frame_face_on" not in smiling  # no masks
    assert 0 <= smiling["swing_share_held"] <= 1 and 0 <= smiling["swing_share_open"] <= 1
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "## Local edits and per-face changes" in md and "faces/Smiling.png" in md


def test_cli_fit_and_bad_inputs(tmp_path: Path, cache_dir: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["axes", "fit", "--samples", str(cache_dir), "--out",
                              str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "references Male, Young" in res.output
    res = runner.invoke(cli, ["axes", "fit", "--samples", str(tmp_path / "nope"), "--out",
                              str(tmp_path / "b2")])
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["axes", "sample", "--n", "10", "--out", str(tmp_path / "s"),
                              "--truncation", "0"])
    assert res.exit_code == 2 and "truncation" in res.output


def test_bundle_refuses_a_retrained_extractor_of_the_same_name(tmp_path: Path,
                                                                cache_dir: Path) -> None:
    from tlgan.axis_work.bundle_store import load_bundle
    from tlgan_base.artifact import ArtifactError

    fit_bundle(cache_dir, tmp_path / "bundle", progress=False)
    ok = load_bundle(tmp_path / "bundle", generator="tiny-dcgan", latent_size=16,
                     extractor="tiny-extractor", extractor_sha256="1" * 64)
    assert ok.names
    with pytest.raises(ArtifactError, match="extractor sha256"):
        load_bundle(tmp_path / "bundle", generator="tiny-dcgan", latent_size=16,
                    extractor="tiny-extractor", extractor_sha256="2" * 64)
    with pytest.raises(ArtifactError, match="generator"):
        load_bundle(tmp_path / "bundle", generator="dcgan-digiface64", latent_size=16)


@pytest.mark.slow
def test_judge_records_each_axis_drag_on_each_reference(tmp_path: Path, cache_dir: Path,
                                                        tiny_pipeline: Pipeline) -> None:
    from tlgan.axis_work.workflow import judge_bundle, reference_drag
    from tlgan.testing import calibrate_extractor, tiny_extractor
    from tlgan_base.artifact import ArtifactError

    bundle_dir = tmp_path / "bundle"
    fitted = fit_bundle(cache_dir, bundle_dir, progress=False)
    other = tiny_extractor(seed=5)  # a judge that did not label the samples
    other.sha256 = "5" * 64
    calibrate_extractor(other, tiny_pipeline.generator.render_tensor(
        tiny_pipeline.seeds_to_latents(range(128))))
    judge = Pipeline(generator=tiny_pipeline.generator, extractor=other)
    judged = judge_bundle(bundle_dir, judge, faces=20, progress=False)
    again = AxisBundle.load(bundle_dir)
    assert again == judged and judged.id != fitted.id
    np.testing.assert_array_equal(judged.directions, fitted.directions)
    drag = reference_drag(judge, np.asarray(fitted.directions), ["Male", "Young"], faces=20,
                          progress=False)
    for k, name in enumerate(judged.names):
        keys = {key for key in judged.stats[k] if key.startswith("judge_drag_")}
        assert keys == {f"judge_drag_{r}" for r in ("Male", "Young") if r != name}
        for r, j in (("Male", 0), ("Young", 1)):
            if r != name:
                assert judged.stats[k][f"judge_drag_{r}"] == pytest.approx(drag[k, j], abs=1e-4)
    prov = judged.provenance["reference_drag"]
    assert prov["judge_sha256"] == other.sha256 and prov["faces"] == 20
    assert np.abs(drag).max() > 0  # the judge sees something move
    # the report shows the judge's view per axis
    pipe = Pipeline(generator=tiny_pipeline.generator, extractor=tiny_pipeline.extractor,
                    bundle=judged)
    summary = axis_report(pipe, judged, tmp_path / "report", faces=2, curve_faces=4,
                          axes=["Smiling", "Male"], progress=False)
    smiling = next(r for r in summary["axes"] if r["axis"] == "Smiling")
    assert smiling["judge_drag_Male"] == pytest.approx(judged.stats[2]["judge_drag_Male"])
    md = (tmp_path / "report" / "summary.md").read_text()
    assert "| Δ Male judge | Δ Young judge |" in md and "tiny-extractor" in md
    with pytest.raises(ValueError, match="labelled the bundle's samples"):
        judge_bundle(bundle_dir, tiny_pipeline, faces=5, progress=False)
    with pytest.raises(ValueError, match="updates: unknown axes"):
        judged.with_stats({"Nose": {"x": 1}})
    from tlgan.testing import tiny_generator

    wrong = Pipeline(generator=tiny_generator(seed=3, latent_size=16), extractor=other)
    wrong.generator.name = "another-gan"
    with pytest.raises(ArtifactError, match="was fitted for generator"):
        judge_bundle(bundle_dir, wrong, faces=5, progress=False)
