"""``tlgan critic``: train a realism critic for a generator."""

from __future__ import annotations

import json
from pathlib import Path

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


@click.group()
def critic() -> None:
    """Train the realism critic that ranks generated faces (higher = more realistic).

    \b
    Examples:
      tlgan critic train --data ../shared/data/celeba-subset --out runs/critic
      tlgan critic train --data ../shared/data/celeba-subset --out runs/critic --resume
    """


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
