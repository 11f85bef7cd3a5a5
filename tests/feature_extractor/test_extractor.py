"""Tests of the CelebA loader, the extractor model, training, evaluation, registry and CLI.

Everything except the ``real_weights`` tests runs on a tiny CelebA-format fixture made here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from feature_extractor import registry
from feature_extractor.data import (
    Augment,
    CelebaError,
    augment_batch,
    image_cache,
    load_image,
    load_images,
    read_celeba,
)
from feature_extractor.evaluation import ATTRIBUTE_KEYS, REPORT_KEYS, compute_metrics
from tlgan.cli.extractor import extractor as extractor_cli
from tlgan_base.artifact import ArtifactError
from tlgan_base.metrics import roc_auc

ATTRS = ["Smiling", "Male", "Eyeglasses", "Rare_Thing"]
N_IMAGES = 40


def make_celeba(root: Path, n: int = N_IMAGES, *, partition: bool = True,
                size: tuple[int, int] = (36, 44)) -> Path:
    """A CelebA-format directory with ``n`` non-square JPEGs and 4 attributes.

    Partition: 24 train / 8 val / 8 test. "Male" images are brighter (learnable);
    "Rare_Thing" is negative for every test image (a single class there).
    """
    rng = np.random.default_rng(0)
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True)
    rows, parts, ids = [], [], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        male = i % 2
        base = 170 if male else 60
        arr = np.clip(rng.normal(base, 30, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(img_dir / name, quality=90)
        p = 0 if i < 24 else (1 if i < 32 else 2)
        vals = [1 if (i % 3 == 0) else -1, 1 if male else -1, 1 if i % 5 == 0 else -1,
                1 if (i % 7 == 0 and p != 2) else -1]
        rows.append(name + " " + " ".join(f"{v:2d}" for v in vals))
        parts.append(f"{name} {p}")
        ids.append(f"{name} {i // 4}")
    (root / "list_attr_celeba.txt").write_text(
        f"{n}\n" + " ".join(ATTRS) + " \n" + "\n".join(rows) + "\n", encoding="utf-8")
    if partition:
        (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n", encoding="utf-8")
    (root / "identity_CelebA.txt").write_text("\n".join(ids) + "\n", encoding="utf-8")
    return root


@pytest.fixture()
def celeba_tiny(tmp_path: Path) -> Path:
    return make_celeba(tmp_path / "celeba")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data dir, weights dir) of a 1-epoch tiny-width training run through the CLI."""
    base = tmp_path_factory.mktemp("fe")
    data = make_celeba(base / "celeba")
    out = base / "weights"
    res = CliRunner().invoke(extractor_cli, [
        "train", "--data", str(data), "--out", str(out), "--epochs", "1", "--width", "4",
        "--batch-size", "8", "--device", "cpu", "--quiet", "--seed", "3"])
    assert res.exit_code == 0, res.output
    return data, out


def _one_line_error(res: object) -> str:
    out = getattr(res, "stderr", "") or getattr(res, "output", "")
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, out
    return lines[0]


# ------------------------------------------------------------------------------------ loader


def test_read_celeba_fixture(celeba_tiny: Path) -> None:
    idx = read_celeba(celeba_tiny)
    assert idx.attributes == ATTRS
    assert len(idx) == N_IMAGES
    assert idx.labels.shape == (N_IMAGES, 4) and set(np.unique(idx.labels)) <= {0, 1}
    assert int(idx.labels[:, 1].sum()) == N_IMAGES // 2
    assert [len(idx.indices(p)) for p in ("train", "val", "test")] == [24, 8, 8]
    assert idx.lines[0] == 3 and idx.identities is not None and idx.identities[5] == 1
    assert idx.checksum["images"] == N_IMAGES and len(idx.checksum["sha256"]) == 64


def test_checksum_changes_with_labels(celeba_tiny: Path) -> None:
    before = read_celeba(celeba_tiny).checksum["sha256"]
    attr = celeba_tiny / "list_attr_celeba.txt"
    attr.write_text(attr.read_text().replace("000001.jpg  1", "000001.jpg -1"))
    assert read_celeba(celeba_tiny).checksum["sha256"] != before


def test_missing_image_names_file_and_line(celeba_tiny: Path) -> None:
    (celeba_tiny / "img_align_celeba" / "000005.jpg").unlink()
    with pytest.raises(CelebaError, match=r"list_attr_celeba\.txt line 7: image .*000005\.jpg "
                                          r"does not exist"):
        read_celeba(celeba_tiny)
    notes: list[str] = []
    idx = read_celeba(celeba_tiny, skip_bad=True, report=notes.append)
    assert len(idx) == N_IMAGES - 1 and "000005.jpg" not in idx.filenames
    assert len(notes) == 1 and "line 7" in notes[0]


@pytest.mark.parametrize("bad_row, reason", [
    ("000003.jpg 1 -1 1", "expected an image name and 4 values, found 4 fields"),
    ("000003.jpg 1 -1 0 1", "values must be 1 or -1, found '0'"),
])
def test_malformed_line_names_file_and_line(celeba_tiny: Path, bad_row: str,
                                            reason: str) -> None:
    attr = celeba_tiny / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[4] = bad_row  # line 5 of the file = third image row
    attr.write_text("\n".join(lines) + "\n")
    with pytest.raises(CelebaError) as err:
        read_celeba(celeba_tiny)
    assert "list_attr_celeba.txt line 5" in str(err.value) and reason in str(err.value)
    notes: list[str] = []
    idx = read_celeba(celeba_tiny, skip_bad=True, report=notes.append)
    assert "000003.jpg" not in idx.filenames and any("line 5" in m for m in notes)


def test_malformed_partition_line(celeba_tiny: Path) -> None:
    part = celeba_tiny / "list_eval_partition.txt"
    lines = part.read_text().splitlines()
    lines[9] = "000010.jpg 7"
    part.write_text("\n".join(lines) + "\n")
    with pytest.raises(CelebaError, match=r"list_eval_partition\.txt line 10: bad partition"):
        read_celeba(celeba_tiny)


def test_bad_header_and_missing_dir(tmp_path: Path, celeba_tiny: Path) -> None:
    with pytest.raises(CelebaError, match="does not exist"):
        read_celeba(tmp_path / "nope")
    attr = celeba_tiny / "list_attr_celeba.txt"
    attr.write_text("forty\n" + attr.read_text().split("\n", 1)[1])
    with pytest.raises(CelebaError, match=r"line 1: expected the image count"):
        read_celeba(celeba_tiny)


def test_unreadable_image_names_image_and_line(celeba_tiny: Path) -> None:
    (celeba_tiny / "img_align_celeba" / "000004.jpg").write_bytes(b"not a jpeg")
    idx = read_celeba(celeba_tiny)
    with pytest.raises(CelebaError, match=r"line 6: image .*000004\.jpg cannot be read"):
        load_images(idx, np.arange(len(idx)), 16)
    imgs, ok = load_images(idx, np.arange(len(idx)), 16, skip_bad=True, report=lambda m: None)
    assert imgs.shape == (N_IMAGES - 1, 16, 16, 3) and 3 not in ok


def test_no_partition_file(tmp_path: Path) -> None:
    root = make_celeba(tmp_path / "np", partition=False)
    idx = read_celeba(root)
    assert idx.partitions is None and len(idx.indices("all")) == N_IMAGES
    with pytest.raises(CelebaError, match="no partition"):
        idx.indices("test")


def test_images_center_cropped_and_cached(celeba_tiny: Path, tmp_path: Path) -> None:
    img = load_image(celeba_tiny / "img_align_celeba" / "000001.jpg")
    assert img.shape == (36, 36, 3) and img.dtype == np.uint8  # 36x44 -> square crop
    idx = read_celeba(celeba_tiny)
    a, rows = image_cache(idx, 64, cache_dir=tmp_path / "cache")
    assert a.shape == (N_IMAGES, 64, 64, 3) and len(list((tmp_path / "cache").iterdir())) == 2
    b, _ = image_cache(idx, 64, cache_dir=tmp_path / "cache")
    assert np.array_equal(a, b) and np.array_equal(rows, np.arange(N_IMAGES))


def test_augment_batch_is_seeded_and_in_range() -> None:
    import torch

    x = torch.rand(6, 3, 64, 64)
    a = augment_batch(x, Augment(), torch.Generator().manual_seed(1))
    b = augment_batch(x, Augment(), torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0 and not torch.allclose(a, x)
    flip_only = Augment(flip=1.0, zoom=(1.0, 1.0), brightness=0, contrast=0, saturation=0)
    assert torch.allclose(augment_batch(x, flip_only, torch.Generator()), x.flip(3))


# ----------------------------------------------------------------------------------- metrics


def test_metrics_schema_and_single_class() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = (rng.random((50, 3)) < 0.4).astype(np.uint8)
    y[:, 2] = 0
    p = np.clip(y * 0.3 + rng.random((50, 3)) * 0.7, 0, 1)
    rep = compute_metrics(y, p, ["a", "b", "c"], weights="w")
    assert tuple(rep) == REPORT_KEYS and tuple(rep["attributes"]["a"]) == ATTRIBUTE_KEYS
    assert rep["attributes"]["a"]["auc"] == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))
    assert rep["attributes"]["c"]["auc"] is None
    assert rep["mean_auc"] == pytest.approx(np.mean([rep["attributes"][k]["auc"]
                                                     for k in "ab"]))
    assert rep["attributes"]["b"]["baseline_accuracy"] == max(y[:, 1].mean(),
                                                              1 - y[:, 1].mean())
    assert roc_auc(np.array([0, 1, 1]), np.array([0.5, 0.5, 0.9])) == pytest.approx(0.75)


# ------------------------------------------------------------------------ training and model


def test_train_smoke_writes_loadable_weights(trained: tuple[Path, Path]) -> None:
    import torch

    _, out = trained
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["kind"] == "extractor-weights" and cfg["attributes"] == ATTRS
    assert cfg["input_size"] == 64 and cfg["model"]["widths"] == [4, 8, 16, 32]
    assert cfg["data"]["images"] == N_IMAGES and len(cfg["data"]["sha256"]) == 64
    assert cfg["seed"] == 3 and cfg["epochs_run"] == 1 and len(cfg["val_metrics"]) == 1
    assert cfg["training"]["device"] == "cpu" and cfg["training"]["wall_seconds"] > 0
    assert cfg["training"]["stopped_by"] == "epochs" and cfg["inference"]["threshold"] == 0.5
    assert cfg["test_metrics"]["images"] == 8 and len(cfg["normalization"]["mean"]) == 3
    ext = registry.load_extractor(str(out), "cpu")
    assert ext.attributes == ATTRS and ext.embedding_size == 32
    assert ext.sha256 == cfg["files"]["model.safetensors"]
    imgs = np.random.default_rng(0).integers(0, 255, (5, 80, 80, 3), dtype=np.uint8)
    probs, emb = ext.predict_with_embeddings(imgs, batch_size=2)
    assert probs.shape == (5, 4) and emb.shape == (5, 32) and probs.dtype == np.float32
    assert np.all((probs > 0) & (probs < 1))
    assert np.allclose(ext.predict(imgs), probs, atol=1e-5)
    t_probs, t_emb = ext.forward_tensor(torch.from_numpy(imgs).permute(0, 3, 1, 2) / 255.0)
    assert np.allclose(t_probs.detach().numpy(), probs, atol=1e-5)
    assert np.allclose(t_emb.detach().numpy(), emb, atol=1e-5)
    with pytest.raises(ValueError, match="uint8"):
        ext.predict(imgs.astype(np.float32))


def test_time_budget_compresses_schedule(tmp_path: Path) -> None:
    from feature_extractor.training import TrainConfig, train

    data = make_celeba(tmp_path / "celeba")
    cfg = TrainConfig(epochs=50, max_minutes=1e-4, batch_size=8, widths=(4, 8, 16, 32),
                      depths=(1, 1, 1, 1), device="cpu", tta="none", calibrate=False)
    config = train(data, tmp_path / "w", cfg, progress=False, log=lambda m: None)
    assert config["calibration"] is None and config["training"]["calibrate"] is False
    tr = config["training"]
    assert tr["stopped_by"] == "time budget" and 1 <= tr["steps_run"] < tr["steps_planned"]
    assert config["epochs_run"] == 1 and config["inference"]["flip_tta"] is False
    assert config["inference"]["zooms"] == [1.0]


def test_distillation_from_teachers(trained: tuple[Path, Path], tmp_path: Path) -> None:
    """A student trained with --teacher records its teachers; soft targets change the result;
    a teacher that lacks an attribute of the data is refused in one line."""
    import torch

    from feature_extractor.training import TrainConfig, _load_teachers, _teacher_targets, train

    data, teacher = trained
    common = dict(epochs=1, batch_size=8, widths=(4, 8, 16, 32), depths=(1, 1, 1, 1),
                  device="cpu", tta="none", seed=5)
    plain = train(data, tmp_path / "plain", TrainConfig(**common), progress=False,
                  log=lambda m: None)
    res = CliRunner().invoke(extractor_cli, [
        "train", "--data", str(data), "--out", str(tmp_path / "student"), "--epochs", "1",
        "--width", "4", "--depths", "1,1,1,1", "--batch-size", "8", "--device", "cpu",
        "--tta", "none", "--seed", "5", "--quiet", "--teacher", str(teacher),
        "--teacher", str(teacher), "--distill", "1.0"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "student" / "config.json").read_text())
    sha = json.loads((teacher / "config.json").read_text())["files"]["model.safetensors"]
    assert [t["sha256"] for t in cfg["training"]["teachers"]] == [sha, sha]
    assert cfg["training"]["distill"] == 1.0
    assert cfg["files"]["model.safetensors"] != plain["files"]["model.safetensors"]
    # the targets are the teachers' (views-averaged) probabilities on the training rows
    ext = registry.load_extractor(str(teacher), "cpu")
    idx = read_celeba(data)
    imgs, _ = load_images(idx, np.arange(len(idx)), 64)
    rows = idx.indices("train")
    loaded = _load_teachers(TrainConfig(**common, teachers=(str(teacher),)), idx.attributes,
                            torch.device("cpu"))
    targets, info = _teacher_targets(loaded, imgs, rows, idx.attributes, lambda m: None, False)
    assert len(info) == 1 and info[0]["sha256"] == sha
    assert np.allclose(targets.numpy()[rows], ext.predict(imgs[rows]), atol=1e-4)
    with pytest.raises(ValueError, match="distill"):
        TrainConfig(distill=1.5)
    other = make_celeba(tmp_path / "other")
    text = (other / "list_attr_celeba.txt").read_text().replace("Smiling", "Bald")
    (other / "list_attr_celeba.txt").write_text(text)
    res = CliRunner().invoke(extractor_cli, [
        "train", "--data", str(other), "--out", str(tmp_path / "s2"), "--epochs", "1",
        "--width", "4", "--batch-size", "8", "--quiet", "--teacher", str(teacher)])
    assert res.exit_code == 2 and "does not predict" in _one_line_error(res)
    assert not (tmp_path / "s2").exists()


def test_fit_platt_recovers_scale_and_shift() -> None:
    from feature_extractor.calibration import fit_platt

    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (20000, 3))
    truth = [(0.6, -0.9), (1.5, 0.4), (1.0, 0.0)]
    y = np.stack([rng.random(20000) < 1 / (1 + np.exp(-(a * x[:, j] + b)))
                  for j, (a, b) in enumerate(truth)], 1)
    y[:, 2] = False  # a single class: identity
    scale, shift = fit_platt(x, y)
    assert np.allclose(scale[:2], [0.6, 1.5], atol=0.06)
    assert np.allclose(shift[:2], [-0.9, 0.4], atol=0.06)
    assert (scale[2], shift[2]) == (1.0, 0.0)
    with pytest.raises(ValueError, match="labels"):
        fit_platt(x, y[:, :2])
    with pytest.raises(ValueError, match="logits"):
        fit_platt(x[0], y[0])


def test_fold_into_head_maps_logits() -> None:
    import torch

    from feature_extractor.calibration import fold_into_head
    from feature_extractor.model import AttributeNet, ModelConfig

    torch.manual_seed(0)
    net = AttributeNet(ModelConfig(num_attributes=3, input_size=64, widths=(4, 8),
                                   depths=(1, 1))).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = net(x)
        fold_into_head(net, np.array([0.5, 2.0, 1.0]), np.array([1.0, -1.0, 0.0]))
        after = net(x)
    assert torch.allclose(after, before * torch.tensor([0.5, 2.0, 1.0])
                          + torch.tensor([1.0, -1.0, 0.0]), atol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        fold_into_head(net, np.ones(2), np.zeros(3))


def test_calibrate_cli_keeps_auc_and_records_source(trained: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    data, weights = trained
    src = json.loads((weights / "config.json").read_text())
    assert src["calibration"]["method"] == "platt"  # training calibrates by default
    out = tmp_path / "cal"
    res = CliRunner().invoke(extractor_cli, ["calibrate", "--weights", str(weights), "--data",
                                             str(data), "--out", str(out), "--quiet",
                                             "--device", "cpu"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["calibration"]["from_sha256"] == src["files"]["model.safetensors"]
    assert set(cfg["calibration"]["scale"]) <= set(ATTRS)
    assert "test_rate_gap_after" in cfg["calibration"]
    assert cfg["test_metrics_uncalibrated"] == src["test_metrics"]
    assert cfg["test_metrics"]["mean_auc"] == pytest.approx(src["test_metrics"]["mean_auc"],
                                                            abs=1e-6)
    assert registry.load_extractor(str(out), "cpu").attributes == ATTRS
    res = CliRunner().invoke(extractor_cli, ["calibrate", "--weights", str(weights), "--data",
                                             str(make_celeba(tmp_path / "np", partition=False)),
                                             "--out", str(tmp_path / "o2"), "--quiet"])
    assert res.exit_code == 2 and "partition" in _one_line_error(res)
    assert not (tmp_path / "o2").exists()


def test_eval_cli_json_schema(trained: tuple[Path, Path]) -> None:
    data, out = trained
    res = CliRunner().invoke(extractor_cli, ["eval", "--data", str(data), "--weights",
                                             str(out), "--json", "--quiet", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert tuple(rep) == REPORT_KEYS and rep["images"] == 8 and rep["weights"] == str(out)
    assert list(rep["attributes"]) == ATTRS
    for m in rep["attributes"].values():
        assert tuple(m) == ATTRIBUTE_KEYS
    assert rep["attributes"]["Rare_Thing"]["auc"] is None  # single class in test partition
    assert "Rare_Thing" in res.stderr and "excluded from means" in res.stderr
    aucs = [m["auc"] for m in rep["attributes"].values() if m["auc"] is not None]
    assert rep["mean_auc"] == pytest.approx(float(np.mean(aucs)))
    cfg = json.loads((out / "config.json").read_text())
    assert rep["mean_auc"] == pytest.approx(cfg["test_metrics"]["mean_auc"], abs=1e-6)


def test_eval_single_view_ignores_the_weights_views(trained: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    from feature_extractor.evaluation import evaluate

    data, out = trained
    multi = tmp_path / "multi"
    shutil.copytree(out, multi)
    cfg = json.loads((multi / "config.json").read_text())
    cfg["inference"].update(flip_tta=True, zooms=[1.0, 1.25])  # config.json is not checksummed
    (multi / "config.json").write_text(json.dumps(cfg))
    ext = registry.load_extractor(str(multi), "cpu")
    assert ext.views == 4
    four = evaluate(ext, data)["attributes"]
    ext.flip_tta, ext.tta_zooms = False, (1.0,)
    one = evaluate(ext, data)["attributes"]
    res = CliRunner().invoke(extractor_cli, ["eval", "--data", str(data), "--weights",
                                             str(multi), "--json", "--quiet", "--single-view"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)["attributes"]
    assert rep == one and one != four


def test_eval_without_partition_file_uses_all_images(trained: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    _, out = trained
    root = make_celeba(tmp_path / "np", partition=False)
    res = CliRunner().invoke(extractor_cli, ["eval", "--data", str(root), "--weights",
                                             str(out), "--json", "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["images"] == N_IMAGES


def test_label_cli(trained: tuple[Path, Path]) -> None:
    data, out = trained
    imgs = [str(data / "img_align_celeba" / f"00000{i}.jpg") for i in (1, 2)]
    res = CliRunner().invoke(extractor_cli, ["label", *imgs, "--weights", str(out), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert list(got) == imgs and list(got[imgs[0]]) == ATTRS
    table = CliRunner().invoke(extractor_cli, ["label", imgs[0], "--weights", str(out)])
    assert table.exit_code == 0 and len(table.stdout.strip().splitlines()) == 1 + len(ATTRS)
    bad = CliRunner().invoke(extractor_cli, ["label", str(data / "nope.jpg"), "--weights",
                                             str(out)])
    assert bad.exit_code == 2 and "nope.jpg does not exist" in _one_line_error(bad)


# -------------------------------------------------------------------------------- registry


def test_corrupt_weights_refused(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    raw = bytearray((bad / "model.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="corrupt"):
        registry.load_extractor(str(bad))
    res = CliRunner().invoke(extractor_cli, ["eval", "--data", str(tmp_path), "--weights",
                                             str(bad)])
    assert res.exit_code == 2 and "corrupt" in _one_line_error(res)


def test_registry_checksum_mismatch_and_missing(trained: tuple[Path, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _, out = trained
    weights_root = tmp_path / "weights"
    shutil.copytree(out, weights_root / "tiny")
    sha = json.loads((out / "config.json").read_text())["files"]["model.safetensors"]
    monkeypatch.setattr(registry, "WEIGHTS_DIR", weights_root)
    good = registry.ExtractorEntry("tiny", "tiny", sha, 64, 4, {}, "test")
    wrong = registry.ExtractorEntry("tiny", "tiny", "ab" * 32, 64, 4, {}, "test")
    gone = registry.ExtractorEntry("gone", "gone", sha, 64, 4, {}, "test")
    monkeypatch.setattr(registry, "EXTRACTORS", {"tiny": good, "wrong": wrong, "gone": gone})
    assert registry.load_extractor("tiny").name == "tiny"
    with pytest.raises(ArtifactError, match=r"expected abababababab\.\.\. from the registry"):
        registry.load_extractor("wrong")
    with pytest.raises(ArtifactError, match=r"expects its weights at .*gone.* does not exist"):
        registry.load_extractor("gone")
    with pytest.raises(ValueError, match="unknown extractor 'nope'"):
        registry.load_extractor("nope")
    res = CliRunner().invoke(extractor_cli, ["label", "x.jpg", "--weights", "wrong"])
    assert res.exit_code == 2 and "from the registry" in _one_line_error(res)


def test_train_cli_bad_input_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(extractor_cli, ["train", "--data", str(tmp_path / "none"),
                                             "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 2 and "does not exist" in _one_line_error(res)
    root = make_celeba(tmp_path / "np", partition=False)
    res = CliRunner().invoke(extractor_cli, ["train", "--data", str(root), "--out",
                                             str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 2 and "list_eval_partition.txt" in _one_line_error(res)
    assert not (tmp_path / "o").exists()


def test_registry_default_entry() -> None:
    entry = registry.EXTRACTORS[registry.DEFAULT]
    assert registry.DEFAULT == "celeba-cnn64" and entry.input_size == 64
    assert entry.num_attributes == 40 and "non-commercial" in entry.source
    assert len(entry.sha256) == 64


# ---------------------------------------------------------------------------- real weights


@pytest.mark.real_weights
def test_default_weights_load_and_match_checksum() -> None:
    from tlgan_base.artifact import sha256_file

    entry = registry.EXTRACTORS[registry.DEFAULT]
    ext = registry.load_extractor(None, "cpu")
    assert ext.name == registry.DEFAULT and len(ext.attributes) == 40
    assert sha256_file(entry.path / "model.safetensors") == entry.sha256 == ext.sha256
    # the target, reached with one view per face (labelling speed; see README)
    assert ext.input_size == 64 and ext.config["test_metrics"]["mean_auc"] >= 0.91
    assert ext.views == 1 and ext.config["training"]["teachers"]
    cal = ext.config["calibration"]  # probabilities calibrated on the validation partition
    assert cal["method"] == "platt" and cal["test_rate_gap_after"] < cal["test_rate_gap_before"]
    bal = [a["balanced_accuracy"] for a in ext.config["test_metrics"]["attributes"].values()]
    assert min(bal) > 0.5
    assert (entry.path / "model.safetensors").stat().st_size <= 25 * 1024 * 1024


@pytest.mark.real_weights
def test_default_weights_on_celeba_subset(celeba: Path) -> None:
    idx = read_celeba(celeba)
    rows = idx.indices("test")[:200]
    imgs, ok = load_images(idx, rows, 128)  # native size: exercises the internal resize
    probs = registry.load_extractor(None, "cpu").predict(imgs)
    for name in ("Male", "Smiling"):
        a = idx.attributes.index(name)
        auc = roc_auc(idx.labels[ok, a], probs[:, a])
        assert auc is not None and auc > 0.85, (name, auc)


def test_no_absolute_paths_in_library() -> None:
    root = Path(registry.__file__).resolve().parent
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "/work/" not in text and "/home/" not in text, path
    assert os.sep in str(registry.WEIGHTS_DIR)
