"""``tlgan extractor``: train, evaluate and run the CelebA attribute extractor.

A thin wrapper over :mod:`feature_extractor` (training, evaluation, registry). Heavy imports
(torch) happen inside the commands so that ``tlgan --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from tlgan.cli.options import threads_option
from tlgan_base.cli_errors import DOMAIN_ERRORS, InputError, fail


def _note(message: str) -> None:
    click.echo(message, err=True)


@click.group(name="extractor")
def extractor() -> None:
    """Train, evaluate and run the 40-attribute face feature extractor (CelebA).

    \b
    Examples:
      tlgan extractor train --data /data/celeba --out runs/celeba-cnn64
      tlgan extractor eval --data /data/celeba --json
      tlgan extractor label face1.jpg face2.png
    """


@extractor.command("train")
@click.option("--data", "data_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="CelebA-format directory (img_align_celeba/, list_attr_celeba.txt, "
                   "list_eval_partition.txt).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Weights folder to write (replaced atomically).")
@click.option("--epochs", type=click.IntRange(min=1), default=36, show_default=True,
              help="Maximum epochs (early stopping on partition 1 may end sooner).")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Time budget: on a busy/shared CPU the schedule compresses to end within "
                   "it (unused when the epochs finish sooner; recorded in config).")
@click.option("--size", type=click.Choice(["64", "128"]), default="64", show_default=True,
              help="Model input size in pixels.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--device", type=str, default="auto", show_default=True,
              help="cpu, cuda, cuda:N or auto (cuda if available).")
@threads_option
@click.option("--batch-size", type=click.IntRange(min=2), default=128, show_default=True,
              help="Training batch size.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-3,
              show_default=True, help="Peak learning rate (AdamW, one-cycle schedule).")
@click.option("--width", type=click.IntRange(min=1), default=32, show_default=True,
              help="Width of the first stage (doubles each of the 4 stages).")
@click.option("--depths", type=str, default="2,2,2,2", show_default=True,
              help="Residual blocks in each of the 4 stages.")
@click.option("--zoom-p", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Probability that a training face is randomly zoomed 1.0-1.5x.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True, help="Dropout before the attribute head.")
@click.option("--patience", type=click.IntRange(min=0), default=6, show_default=True,
              help="Stop after this many epochs without a better validation AUC (0: never).")
@click.option("--pos-weight", type=click.Choice(["none", "sqrt", "balanced"]),
              default="sqrt", show_default=True,
              help="BCE positive-class weight for rare attributes.")
@click.option("--tta", type=click.Choice(["auto", "flip", "none"]), default="auto",
              show_default=True,
              help="Test-time views of the saved extractor: none, flip (face + mirror image) "
                   "or auto (flip and centre zooms, chosen on partition 1).")
@click.option("--teacher", "teachers", multiple=True, metavar="NAME_OR_DIR",
              help="Distil from this trained extractor (repeat for an ensemble): its "
                   "predictions on the training images become soft targets.")
@click.option("--distill", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="Weight of the teachers' soft targets in the loss (labels get the rest).")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="Fit Platt scaling per attribute on partition 1 and fold it into the head, "
                   "so outputs are calibrated probabilities (AUC unchanged).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep decoded images as .npy here between runs.")
@click.option("--skip-bad", is_flag=True,
              help="Skip malformed rows and missing/unreadable images (each is reported) "
                   "instead of stopping at the first.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_cmd(data_dir: Path, out_dir: Path, epochs: int, max_minutes: float | None,
              size: str, seed: int, device: str, batch_size: int, lr: float, width: int,
              depths: str, zoom_p: float, dropout: float, patience: int, pos_weight: str, tta: str,
              teachers: tuple[str, ...], distill: float, calibrate: bool,
              cache_dir: Path | None, skip_bad: bool, quiet: bool) -> None:
    """Train an extractor on partition 0 and write a weights folder.

    Early-stops on partition 1 (validation mean ROC-AUC), evaluates on partition 2 and
    writes OUT/model.safetensors and OUT/config.json (attribute names, input size,
    architecture, normalization, data checksum, seed, per-epoch validation and test metrics,
    device and wall time).

    \b
    Examples:
      tlgan extractor train --data ../shared/data/celeba-subset \\
          --out runs/teachers/a --max-minutes 40 --threads 2
      tlgan extractor train --data ../shared/data/celeba-subset --tta none \\
          --out runs/student --teacher runs/teachers/a --teacher runs/teachers/b
      tlgan extractor train --data /data/celeba --out runs/celeba-128 --size 128 --device cuda
    """
    from feature_extractor.training import train
    from feature_extractor.training_config import ExtractorTrainConfig
    from feature_extractor.transforms import Augment

    try:
        cfg = ExtractorTrainConfig(
            epochs=epochs, max_minutes=max_minutes, size=int(size), seed=seed, device=device,
            batch_size=batch_size, lr=lr, widths=tuple(width * m for m in (1, 2, 4, 8)),
            depths=_depths(depths), dropout=dropout, patience=patience,
            augment=Augment(zoom_p=zoom_p),
            pos_weight=pos_weight, tta=tta, teachers=tuple(teachers), distill=distill,
            calibrate=calibrate,
            cache_dir=str(cache_dir) if cache_dir else None, skip_bad=skip_bad,
        )
        config = train(data_dir, out_dir, cfg, progress=not quiet)
    except DOMAIN_ERRORS as exc:
        fail(exc)
    except OSError as exc:
        raise InputError(f"cannot write {out_dir}: {exc.strerror or exc}") from exc
    tm = config.get("test_metrics")
    summary = {"out": str(out_dir), "sha256": config["files"]["model.safetensors"],
               "epochs_run": config["epochs_run"], "best_epoch": config["best_epoch"],
               "wall_seconds": config["training"]["wall_seconds"]}
    if tm:
        summary.update({k: tm[k] for k in ("mean_accuracy", "mean_baseline_accuracy",
                                           "mean_balanced_accuracy", "mean_auc", "images")})
    click.echo(json.dumps(summary, indent=2))


@extractor.command("calibrate")
@click.option("--weights", type=str, default=None,
              help="Registered extractor name or weights folder  [default: the registry's "
                   "default]")
@click.option("--data", "data_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="CelebA-format directory with a partition file (fits on partition 1).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Weights folder to write (replaced atomically).")
@click.option("--device", type=str, default="auto", show_default=True,
              help="cpu, cuda, cuda:N or auto.")
@threads_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def calibrate_cmd(weights: str | None, data_dir: Path, out_dir: Path, device: str,
                  quiet: bool) -> None:
    """Calibrate trained weights (Platt scaling per attribute, fitted on partition 1).

    For weights trained with --no-calibrate or before calibration existed: writes OUT with
    the calibration folded into the head, its parameters and the source's sha256 in
    config.json, and test metrics recomputed. Prints a JSON summary.

    \b
    Examples:
      tlgan extractor calibrate --weights runs/student --data ../shared/data/celeba-subset \\
          --out runs/student-calibrated
    """
    from feature_extractor.calibration import calibrate_weights

    try:
        config = calibrate_weights(weights, data_dir, out_dir, device=device,
                                   progress=not quiet, log=_note)
    except DOMAIN_ERRORS as exc:
        fail(exc)
    except OSError as exc:
        raise InputError(f"cannot write {out_dir}: {exc.strerror or exc}") from exc
    cal = config["calibration"]
    summary: dict[str, Any] = {
        "out": str(out_dir), "sha256": config["files"]["model.safetensors"],
        "from_sha256": cal["from_sha256"], "validation_images": cal["images"],
        **{k: cal[k] for k in ("test_rate_gap_before", "test_rate_gap_after") if k in cal}}
    tm = config.get("test_metrics")
    if tm:
        summary.update({k: tm[k] for k in ("mean_accuracy", "mean_balanced_accuracy",
                                           "mean_auc", "images")})
    click.echo(json.dumps(summary, indent=2))


def _depths(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in text.split(","))
    except ValueError:
        out = ()
    if len(out) != 4 or min(out) < 1:
        raise InputError(f"--depths must be 4 positive integers like 1,2,2,1, got {text!r}")
    return out


@extractor.command("eval")
@click.option("--data", "data_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="CelebA-format directory (a partition file is optional).")
@click.option("--weights", type=str, default=None,
              help="Registered extractor name or weights folder  [default: the registry's "
                   "default]")
@click.option("--partition", type=click.Choice(["test", "val", "train", "all"]),
              default="test", show_default=True,
              help="Images to evaluate; without a partition file all images are used.")
@click.option("--device", type=str, default="auto", show_default=True,
              help="cpu, cuda, cuda:N or auto.")
@threads_option
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--skip-bad", is_flag=True, help="Skip (and report) bad rows and images.")
@click.option("--single-view", is_flag=True,
              help="Label each face once, ignoring the weights' test-time views (mirror image, "
                   "zooms): what those views add.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_cmd(data_dir: Path, weights: str | None, partition: str, device: str,
             batch_size: int, skip_bad: bool, single_view: bool, as_json: bool,
             quiet: bool) -> None:
    """Per-attribute accuracy, majority baseline, balanced accuracy and ROC-AUC.

    Predictions are thresholded at 0.5. Attributes with a single class in the evaluated
    images get auc null and are excluded from the means (a note on stderr names them).

    \b
    JSON keys: attributes{name: accuracy, baseline_accuracy, balanced_accuracy, auc,
    positives}, mean_accuracy, mean_baseline_accuracy, mean_balanced_accuracy, mean_auc,
    images, weights.

    \b
    Examples:
      tlgan extractor eval --data ../shared/data/celeba-subset --json
      tlgan extractor eval --data /data/celeba --weights runs/celeba-128 --partition all
      tlgan extractor eval --data ../shared/data/celeba-subset --weights runs/teachers/a \\
          --single-view --json
    """
    from feature_extractor.evaluation import evaluate
    from feature_extractor.extractor_weights import load_extractor

    try:
        ext = load_extractor(weights, device)
        if single_view:
            ext.flip_tta, ext.tta_zooms = False, (1.0,)
        report = evaluate(ext, data_dir, partition=partition, batch_size=batch_size,
                          skip_bad=skip_bad, report=_note, progress=not quiet)
    except DOMAIN_ERRORS as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(_eval_table(report))


def _f(v: Any, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def _eval_table(report: dict[str, Any]) -> str:
    head = f"{'attribute':<22}{'acc':>7}{'base':>7}{'bal':>7}{'auc':>7}{'pos':>7}"
    lines = [f"weights {report['weights']}, {report['images']} images", head]
    for name, m in report["attributes"].items():
        lines.append(f"{name:<22}{_f(m['accuracy']):>7}{_f(m['baseline_accuracy']):>7}"
                     f"{_f(m['balanced_accuracy']):>7}{_f(m['auc']):>7}{m['positives']:>7}")
    lines.append(f"{'mean':<22}{_f(report['mean_accuracy']):>7}"
                 f"{_f(report['mean_baseline_accuracy']):>7}"
                 f"{_f(report['mean_balanced_accuracy']):>7}{_f(report['mean_auc']):>7}")
    return "\n".join(lines)


@extractor.command("label")
@click.argument("images", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--weights", type=str, default=None,
              help="Registered extractor name or weights folder  [default: the registry's "
                   "default]")
@click.option("--device", type=str, default="auto", show_default=True,
              help="cpu, cuda, cuda:N or auto.")
@threads_option
@click.option("--json", "as_json", is_flag=True,
              help="Print {image: {attribute: probability}} as JSON.")
def label_cmd(images: tuple[Path, ...], weights: str | None, device: str,
              as_json: bool) -> None:
    """Print the attribute probabilities of each IMAGE (any size; centre-cropped square).

    \b
    Examples:
      tlgan extractor label face.jpg
      tlgan extractor label a.png b.png --json
    """
    import numpy as np

    from feature_extractor.extractor_weights import load_extractor
    from tlgan_base.image_codec import load_image

    try:
        ext = load_extractor(weights, device)
    except DOMAIN_ERRORS as exc:
        fail(exc)
    arrays = []
    for path in images:
        try:
            arrays.append(load_image(path, ext.input_size))
        except (OSError, ValueError) as exc:
            reason = "does not exist" if not path.exists() else f"is not a readable image ({exc})"
            raise InputError(f"{path} {reason}") from exc
    probs = ext.predict(np.stack(arrays))
    if as_json:
        out = {str(p): {a: round(float(v), 5) for a, v in zip(ext.attributes, row, strict=True)}
               for p, row in zip(images, probs, strict=True)}
        click.echo(json.dumps(out, indent=2))
        return
    names = [p.name if len(p.name) <= 14 else p.name[:13] + "…" for p in images]
    width = max(8, *(len(n) for n in names)) + 2
    lines = [f"{'attribute':<22}" + "".join(f"{n:>{width}}" for n in names)]
    for a, name in enumerate(ext.attributes):
        lines.append(f"{name:<22}" + "".join(f"{probs[i, a]:>{width}.3f}"
                                            for i in range(len(images))))
    click.echo("\n".join(lines))
    if sys.stdout.isatty():
        click.echo(f"(weights {ext.name}, probabilities; >= 0.5 means present)", err=True)
