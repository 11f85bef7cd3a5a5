"""axes.bundle: build (orthogonalized), save/load round trip, verification, edits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from axes import bundle_io
from axes.bundle import AxisBundle, build_bundle, load
from axes.bundle_attach import attach_samples
from axes.evidence import make_synthetic
from axes.fitting import FitResult, fit_axes, fit_one
from tlgan_base.artifact import ArtifactError

NAMES = ["Male", "Young", "Smiling", "Eyeglasses"]
PROV = {"generator": "pggan-celebahq", "generator_sha256": "a" * 64,
        "extractor": "celeba-resnet18", "extractor_sha256": "b" * 64, "samples_id": "abc123"}


@pytest.fixture(scope="module")
def fit() -> FitResult:
    z, p, _ = make_synthetic(3000, 12, 4, seed=11)
    return fit_axes(z, p, NAMES, n_jobs=1)


@pytest.fixture(scope="module")
def bundle(fit: FitResult) -> AxisBundle:
    # references kept as fitted, so the assertions below can compare them to the raw fit
    return build_bundle(fit, provenance=PROV, reference_mode="keep")


def test_default_disentangles_references_and_records_it(fit: FitResult) -> None:
    mutual = build_bundle(fit, provenance=PROV)
    keep = build_bundle(fit, provenance=PROV, reference_mode="keep")
    assert mutual.provenance["reference_orthogonalization"] == "mutual"
    assert mutual.reference_mode == "mutual" and keep.reference_mode == "keep"
    d = mutual.directions.astype(np.float64)
    # each reference is orthogonal to the other's raw direction: moving Male holds Young
    raw = fit.axes
    assert abs(float(d[0] @ raw[1])) < 1e-6 and abs(float(d[1] @ raw[0])) < 1e-6
    assert abs(float(keep.directions[0] @ raw[1])) > 1e-3
    # the reference span is the same, so every other axis is identical in both bundles
    np.testing.assert_allclose(mutual.directions[2:], keep.directions[2:], atol=1e-6)
    # a reference move keeps (most of) its own attribute: calibration stays positive
    assert np.all(mutual.calibration[:2] > 0)
    with pytest.raises(ValueError, match="reference_mode"):
        build_bundle(fit, provenance=PROV, reference_mode="gram-schmidt")


def test_mutual_bundle_round_trips_and_add_reference_keeps_mode(tmp_path: Path,
                                                                 fit: FitResult) -> None:
    mutual = build_bundle(fit, provenance=PROV)
    back = load(mutual.save(tmp_path / "b"))
    assert back == mutual and back.reference_mode == "mutual"
    raw = np.random.default_rng(3).standard_normal(12)
    new = mutual.add_axis("Young", raw, {"coef_norm": 1.0})
    assert abs(float(new.directions[0] @ normalize_row(raw))) < 1e-6


def normalize_row(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_build_orthogonalizes_against_references(fit: FitResult, bundle: AxisBundle) -> None:
    assert bundle.references == ["Male", "Young"]
    assert bundle.directions.dtype == np.float32 and bundle.directions.shape == (4, 12)
    np.testing.assert_allclose(bundle.directions[:2], fit.axes[:2], atol=1e-7)
    np.testing.assert_allclose(bundle.raw_directions, fit.axes, atol=1e-7)
    np.testing.assert_allclose(bundle.directions[2:] @ bundle.directions[:2].T, 0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(bundle.directions, axis=1), 1, atol=1e-6)
    assert not bundle.directions.flags.writeable


def test_provenance_filled(bundle: AxisBundle) -> None:
    prov = bundle.provenance
    assert prov["latent_size"] == 12 and prov["n"] == 3000 and prov["seed"] == 0
    assert prov["method"] == "glm-binomial" and prov["created"]
    assert prov["generator"] == "pggan-celebahq" and prov["samples_id"] == "abc123"
    assert len(bundle.id) == 12 and int(bundle.id, 16) >= 0


def test_calibration_is_coef_dot_axis(bundle: AxisBundle) -> None:
    expected = [float(np.dot(s["coef"], d)) for s, d in zip(bundle.stats, bundle.directions,
                                                           strict=True)]
    np.testing.assert_allclose(bundle.calibration, expected, rtol=1e-5)
    np.testing.assert_allclose(bundle.calibration[0], bundle.stats[0]["coef_norm"], rtol=1e-5)
    assert np.all(bundle.calibration[2:] <= np.array([s["coef_norm"]
                                                      for s in bundle.stats[2:]]) + 1e-9)


def test_round_trip(tmp_path: Path, bundle: AxisBundle) -> None:
    out = bundle.save(tmp_path / "axes-v1")
    assert sorted(p.name for p in out.iterdir()) == ["axes.npz", "config.json"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["kind"] == "axis-bundle" and cfg["id"] == bundle.id
    loaded = load(out, expect_generator="pggan-celebahq", expect_latent_size=12,
                  expect_extractor="celeba-resnet18")
    assert loaded == bundle
    assert loaded.id == bundle.id
    np.testing.assert_array_equal(loaded.calibration, bundle.calibration)
    assert loaded.stats[2]["coef"].dtype == np.float64
    assert AxisBundle.load(out) == bundle
    # npz holds no pickled objects
    with np.load(out / "axes.npz", allow_pickle=False) as npz:
        assert "stats.3.coef" in npz.files


def test_corrupt_file_is_refused(tmp_path: Path, bundle: AxisBundle) -> None:
    out = bundle.save(tmp_path / "b")
    data = bytearray((out / "axes.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "axes.npz").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupt"):
        load(out)


def test_hand_edited_config_is_refused(tmp_path: Path, bundle: AxisBundle) -> None:
    out = bundle.save(tmp_path / "b")
    cfg = json.loads((out / "config.json").read_text())
    cfg["references"] = ["Male"]
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="content id"):
        load(out)


def test_missing_folder_and_wrong_kind(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load(tmp_path / "nothing")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text(json.dumps({"kind": "sample-cache",
                                                            "files": {}}))
    with pytest.raises(ArtifactError, match="expected a 'axis-bundle'"):
        load(tmp_path / "x")


@pytest.mark.parametrize(
    ("kwargs", "parts"),
    [
        ({"expect_generator": "stylegan2-ffhq"}, ["'pggan-celebahq'", "'stylegan2-ffhq'"]),
        ({"expect_latent_size": 512}, ["latent size 12", "512"]),
        ({"expect_extractor": "other-cnn"}, ["'celeba-resnet18'", "'other-cnn'"]),
        ({"expect_generator_sha256": "c" * 64}, ["generator sha256", "c" * 64]),
    ],
)
def test_mismatch_is_refused_naming_both_sides(tmp_path: Path, bundle: AxisBundle,
                                               kwargs: dict[str, object],
                                               parts: list[str]) -> None:
    out = bundle.save(tmp_path / "b")
    with pytest.raises(ArtifactError) as info:
        load(out, **kwargs)  # type: ignore[arg-type]
    for part in parts:
        assert part in str(info.value)


def test_failed_save_leaves_nothing(tmp_path: Path, bundle: AxisBundle,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(bundle_io, "save_config", boom)
    with pytest.raises(OSError, match="disk full"):
        bundle.save(tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_index(bundle: AxisBundle) -> None:
    assert bundle.index("Smiling") == 2
    np.testing.assert_array_equal(bundle.direction("Smiling"), bundle.directions[2])
    with pytest.raises(ValueError, match="valid names: Male, Young, Smiling, Eyeglasses"):
        bundle.index("Bald")


def test_add_axis_appends_orthogonalized(bundle: AxisBundle) -> None:
    rng = np.random.default_rng(5)
    raw = rng.standard_normal(12) * 3
    new = bundle.add_axis("Bangs", raw, {"coef_norm": 1.7, "source": "head"})
    assert new.names == [*bundle.names, "Bangs"] and len(bundle) == 4
    np.testing.assert_allclose(new.raw_directions[-1], raw / np.linalg.norm(raw), atol=1e-6)
    np.testing.assert_allclose(new.directions[-1] @ new.directions[:2].T, 0, atol=1e-6)
    np.testing.assert_array_equal(new.directions[:4], bundle.directions)
    assert new.calibration[-1] == pytest.approx(
        1.7 * float(new.raw_directions[-1] @ new.directions[-1]), rel=1e-5)
    assert new.id != bundle.id
    assert new.provenance["added_axes"][0]["name"] == "Bangs"


def test_add_axis_replaces_same_name(bundle: AxisBundle) -> None:
    raw = np.zeros(12)
    raw[3] = 1.0
    new = bundle.add_axis("Smiling", raw, {"coef_norm": 2.0})
    assert new.names == bundle.names
    assert new.stats[2] == {"coef_norm": 2.0, "name": "Smiling"}
    np.testing.assert_array_equal(new.directions[3], bundle.directions[3])


def test_add_axis_replacing_reference_reorthogonalizes(bundle: AxisBundle) -> None:
    raw = np.random.default_rng(6).standard_normal(12)
    new = bundle.add_axis("Male", raw, {"coef_norm": 1.0})
    np.testing.assert_allclose(new.directions[2:] @ new.directions[0], 0, atol=1e-6)


def test_add_axis_bad_arguments(bundle: AxisBundle, fit: FitResult) -> None:
    with pytest.raises(ValueError, match=r"raw_direction must have shape \(12,\)"):
        bundle.add_axis("X", np.ones(5), {"coef_norm": 1.0})
    with pytest.raises(ValueError, match="raw_direction contains a zero vector"):
        bundle.add_axis("X", np.zeros(12), {"coef_norm": 1.0})
    with pytest.raises(ValueError, match="coef_norm"):
        bundle.add_axis("X", np.ones(12), {})
    with pytest.raises(ValueError, match="inside the span"):
        bundle.add_axis("X", bundle.raw_directions[0] + bundle.raw_directions[1],
                        {"coef_norm": 1.0})


def test_add_axis_from_fit_one(bundle: AxisBundle) -> None:
    z, p, w = make_synthetic(2000, 12, 1, seed=99)
    axis, st = fit_one(z, p[:, 0], name="Bangs")
    new = bundle.add_axis("Bangs", axis, st)
    assert new.stats[-1]["name"] == "Bangs"
    assert float(axis @ w[0]) > 0.95


def test_build_bad_arguments(fit: FitResult) -> None:
    with pytest.raises(ValueError, match="valid names: Male, Young, Smiling, Eyeglasses"):
        build_bundle(fit, references=["Bald"], provenance=PROV)
    with pytest.raises(ValueError, match="'generator'"):
        build_bundle(fit, provenance={"extractor": "x"})
    with pytest.raises(ValueError, match="latent_size"):
        build_bundle(fit, provenance={**PROV, "latent_size": 512})
    no_refs = build_bundle(fit, references=[], provenance=PROV)
    np.testing.assert_allclose(no_refs.directions, fit.axes, atol=1e-7)


def test_constructor_checks_shapes(bundle: AxisBundle) -> None:
    with pytest.raises(ValueError, match="raw_directions must have shape"):
        AxisBundle(names=bundle.names, directions=bundle.directions,
                   raw_directions=bundle.raw_directions[:, :3], references=[],
                   stats=bundle.stats)
    with pytest.raises(ValueError, match="stats must have 4 entries"):
        AxisBundle(names=bundle.names, directions=bundle.directions,
                   raw_directions=bundle.raw_directions, references=[], stats=[])
    with pytest.raises(ValueError, match="provenance must hold JSON"):
        AxisBundle(names=bundle.names, directions=bundle.directions,
                   raw_directions=bundle.raw_directions, references=[],
                   stats=bundle.stats, provenance={"x": object()})


# ------------------------------------------------------------------ shipped sample subset
def _cache(n: int = 400, seed: int = 3):  # type: ignore[no-untyped-def]
    from axes.samples import SampleCache

    rng = np.random.default_rng(seed)
    return SampleCache(z=rng.standard_normal((n, 12)).astype(np.float32),
                       probs=rng.uniform(0, 1, (n, 4)).astype(np.float32),
                       embeddings=rng.uniform(0, 3, (n, 8)).astype(np.float16),
                       attributes=NAMES, config={"generator": PROV["generator"],
                                                 "extractor": PROV["extractor"], "seed": 7})


def test_attach_samples_ships_a_checksummed_float16_subset_and_keeps_the_id(
        tmp_path: Path, bundle: AxisBundle) -> None:
    folder = bundle.save(tmp_path / "b")
    cache = _cache()
    shipped = attach_samples(folder, cache, 100, source="runs/samples")
    assert shipped.id == bundle.id and shipped == bundle and shipped.has_samples
    cfg = json.loads((folder / "config.json").read_text())
    meta = cfg["samples"]
    assert meta["n"] == 100 and meta["rows"] == [0, 100] and meta["cache_seed"] == 7
    assert meta["cache_path"] == "runs/samples" and meta["dtype"] == "float16"
    assert cfg["files"]["samples.npz"] == meta["sha256"]
    got = shipped.load_samples()
    assert got.z.dtype == np.float32 and got.embeddings.dtype == np.float16
    np.testing.assert_allclose(got.z, cache.z[:100], atol=4e-3)
    np.testing.assert_allclose(got.probs, cache.probs[:100], atol=1e-3)
    assert got.attributes == NAMES and got.latent_space == "z"
    # an edit of the bundle carries the samples along; a mismatch is refused on load
    shipped.add_axis("New", np.ones(12), {"coef_norm": 1.0}).save(folder)
    again = load(folder)
    assert again.has_samples and "New" in again.names
    with open(folder / "samples.npz", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ArtifactError, match=r"samples\.npz is corrupt"):
        load(folder)


def test_attach_samples_refuses_another_generator_and_bad_rows(tmp_path: Path,
                                                               bundle: AxisBundle) -> None:
    folder = bundle.save(tmp_path / "b")
    cache = _cache()
    with pytest.raises(ValueError, match="rows"):
        attach_samples(folder, cache, 401)
    other = type(cache)(z=cache.z, probs=cache.probs, embeddings=cache.embeddings,
                        attributes=NAMES, config={**cache.config, "generator": "x"})
    with pytest.raises(ValueError, match="samples: the cache was made with generator"):
        attach_samples(folder, other, 10)
    assert not load(folder).has_samples
    with pytest.raises(ArtifactError, match=r"samples: bundle .* ships no sample subset"):
        load(folder).load_samples()


def test_shipped_bundles_carry_their_samples() -> None:
    from tlgan.axis_work.bundle_store import BUNDLES

    for entry in BUNDLES.values():
        b = load(entry.path)
        assert b.has_samples, entry.name
        assert b.samples_meta is not None and b.samples_meta["n"] == 5000
        assert (entry.path / "samples.npz").stat().st_size < 4 * 2**20


def test_add_axis_holding_some_references_records_and_keeps_them(tmp_path: Path,
                                                                 bundle: AxisBundle) -> None:
    raw = np.random.default_rng(8).standard_normal(12) + 2 * bundle.raw_directions[1]
    new = bundle.add_axis("Older", raw, {"coef_norm": 1.0}, held=["Male"])
    own = new.direction("Older").astype(np.float64)
    male_raw = new.raw_directions[0].astype(np.float64)
    assert abs(float(own @ male_raw)) < 1e-6  # holds Male ...
    assert abs(float(own @ new.direction("Young"))) > 0.2  # ... and may change Young
    assert new.held_references("Older") == ["Male"]
    assert new.held_references("Smiling") == ["Male", "Young"]  # axes without the stat
    everything = bundle.add_axis("Older", raw, {"coef_norm": 1.0})
    assert abs(float(everything.direction("Older") @ everything.direction("Young"))) < 1e-6
    assert "held_references" not in everything.stats[-1]
    loaded = load(new.save(tmp_path / "b"))  # round trip: id and checksums verify
    assert loaded.held_references("Older") == ["Male"]
    np.testing.assert_array_equal(loaded.directions, new.directions)
    # replacing a reference redoes every axis, each holding what it recorded
    moved = loaded.add_axis("Male", np.random.default_rng(9).standard_normal(12),
                            {"coef_norm": 1.0})
    own = moved.direction("Older").astype(np.float64)
    assert abs(float(own @ moved.raw_directions[0])) < 1e-6
    assert abs(float(own @ moved.direction("Young"))) > 0.2
    assert abs(float(moved.direction("Smiling") @ moved.raw_directions[1])) < 1e-6
    # replacing the axis without ``held`` makes it hold every reference again
    again = loaded.add_axis("Older", raw, {"coef_norm": 1.0, "held_references": ["Male"]})
    assert again.held_references("Older") == ["Male", "Young"]


def test_add_axis_held_bad_names(bundle: AxisBundle) -> None:
    raw = np.random.default_rng(8).standard_normal(12)
    with pytest.raises(ValueError, match="held: 'Nose' is not another axis"):
        bundle.add_axis("Older", raw, {"coef_norm": 1.0}, held=["Nose"])
    with pytest.raises(ValueError, match="held: 'Older' is not another axis"):
        bundle.add_axis("Older", raw, {"coef_norm": 1.0}, held=["Older"])
    with pytest.raises(ValueError, match="held: 'Young' is a reference axis"):
        bundle.add_axis("Young", raw, {"coef_norm": 1.0}, held=["Male"])
    with pytest.raises(ValueError, match="inside the span"):
        bundle.add_axis("X", bundle.raw_directions[0], {"coef_norm": 1.0}, held=["Male"])
