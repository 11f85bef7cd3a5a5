"""``tlgan critic``: teach or train a realism critic for a generator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from tlgan.cli.options import (
    device_option,
    early_stop_options,
    generator_option,
    partition_data_options,
    run_folder_options,
    threads_option,
)
from tlgan.critic import DEFAULT_AUGMENT
from tlgan.critic.taught import DEFAULT_CS, DEFAULT_FOLDS, DEFAULT_LAYERS, DEFAULT_MIN_AUC


@click.group()
def critic() -> None:
    """Teach or train the realism critic that ranks generated faces (higher = more
    realistic).

    \b
    Examples:
      tlgan critic teach --marks tlgan/critic/marks/celeba-dcgan64-broken-marks.json \
          --out runs/taught
      tlgan critic train --data ../shared/data/celeba-subset --out runs/critic
      tlgan critic train --data ../shared/data/celeba-subset --out runs/critic --resume
    """


T = TypeVar("T", int, float)


def _comma_list(text: str, name: str, kind: Callable[[str], T]) -> list[T]:
    """``text``'s comma-separated numbers as ``kind``; a usage error naming ``name``."""
    try:
        return [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"a comma list of numbers, got {text!r}",
                                 param_hint=name) from None


@critic.command()
@click.option("--marks", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="JSON marks: generator, generator_sha256, truncation, how, and seeds -> "
                   "broken true/false.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Critic folder to write (head.safetensors + config.json, atomically).")
@generator_option
@device_option
@threads_option
@click.option("--layers", default=",".join(map(str, DEFAULT_LAYERS)), show_default=True,
              help="ReLU layers of the generator tried by cross-validation (comma list).")
@click.option("--cs", default=",".join(f"{c:g}" for c in DEFAULT_CS), show_default=True,
              help="Inverse L2 strengths of the logistic regression tried (comma list).")
@click.option("--folds", type=int, default=DEFAULT_FOLDS, show_default=True,
              help="Stratified cross-validation folds (seeded).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the folds and of the bootstrap interval.")
@click.option("--min-auc", type=float, default=DEFAULT_MIN_AUC, show_default=True,
              help="Refuse to save unless the cv AUC's 95% bootstrap interval lies above it.")
def teach(marks: Path, out: Path, generator: str | None, device: str, layers: str, cs: str,
          folds: int, seed: int, min_auc: float) -> None:
    """Teach a realism critic from faces marked broken or fine by eye.

    Each marked seed's latent is run through the generator up to a ReLU layer; the
    per-channel mean and std of that output feed a StandardScaler + L2 logistic regression
    of broken. The layer and C are chosen by seeded cross-validation on the marks; the cv
    AUC and its 95% bootstrap interval are printed, and nothing is saved when the interval
    reaches down to --min-auc. The folder loads with `--critic OUT`. Seconds on one CPU
    thread.

    \b
    Example:
      tlgan critic teach --marks tlgan/critic/marks/celeba-dcgan64-broken-marks.json \
          --out runs/taught
    """
    from tlgan.critic.taught import teach_critic
    from tlgan.generators import load_generator

    gen = load_generator(generator, device)
    written = teach_critic(marks, out, gen, layers=_comma_list(layers, "--layers", int),
                           cs=_comma_list(cs, "--cs", float), folds=folds, seed=seed,
                           min_auc=min_auc, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps({"out": str(out), "layer": written["layer"], "C": written["C"],
                           **written["metrics"]}))


@critic.command()
@partition_data_options
@generator_option
@device_option
@threads_option
@click.option("--steps", type=int, default=4000, show_default=True,
              help="Most training steps (the learning rate's cosine decay spans them).")
@click.option("--batch", type=int, default=32, show_default=True,
              help="Real crops and generated faces per step (each).")
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Adam learning rate.")
@click.option("--width", type=int, default=32, show_default=True,
              help="Channels of the critic's first convolution (doubled at each stage).")
@click.option("--augment", default=DEFAULT_AUGMENT, show_default=True,
              help="Augmentation of both halves: a comma list of translation, color, cutout, "
                   "or none.")
@click.option("--broken", type=float, default=0.0, show_default=True,
              help="Share of the generated half replaced by partition-0 crops broken on "
                   "purpose (warped or melted), also labelled unrealistic (0: none).")
@early_stop_options(val_images=1024, eval_every=200,
                    val_help="Partition-1 crops (and as many generated faces) scored per "
                             "evaluation.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of initialisation, data order, latents and augmentation.")
@run_folder_options
def train(data: Path, out: Path, generator: str | None, device: str, steps: int, batch: int,
          lr: float, width: int, augment: str, broken: float, eval_every: int, patience: int,
          val_images: int, max_train_images: int, max_minutes: float | None, seed: int,
          work: Path | None, resume: bool, quiet: bool) -> None:
    """Train a realism critic (64x64 face -> logit) against a frozen generator and write a
    weights folder.

    Each step shows the critic real partition-0 crops and the generator's faces from fresh
    prior latents, both flipped and augmented alike (binary cross-entropy); it is scored on
    partition-1 crops against faces of fixed seeds, and the snapshot with the lowest
    validation loss is kept (early stopping). The folder (critic.safetensors + config.json +
    ranked.png) is tied to the generator's sha256 and loads with `--critic OUT`. About 0.3 s
    a step on one CPU thread.

    \b
    Examples:
      tlgan critic train --data ../shared/data/celeba-subset --out runs/critic --steps 20 \\
          --eval-every 10 --val-images 32
      tlgan critic train --data ../shared/data/celeba-subset \\
          --out tlgan/critic/weights/celeba-dcgan64-critic --max-minutes 28
    """
    from tlgan.critic.critic_training import CriticTrainConfig, train_critic

    cfg = CriticTrainConfig(
        data=str(data), out=str(out), generator=generator,
        work=None if work is None else str(work), device=device, seed=seed, steps=steps,
        batch=batch, lr=lr, width=width, augment=augment, broken=broken,
        eval_every=eval_every,
        patience=patience, val_images=val_images, max_train_images=max_train_images,
        max_minutes=max_minutes, checkpoint_every=eval_every, resume=resume,
        progress=not quiet)
    written = train_critic(cfg, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps({"out": str(out), **written["metrics"],
                           "steps": written["training"]["steps_run"],
                           "best_step": written["training"]["best_step"]}))
