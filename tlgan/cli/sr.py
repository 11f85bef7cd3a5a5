"""``tlgan sr``: train the face upscaler (2x super-resolution) used for large images."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tlgan.cli.options import (
    device_option,
    early_stop_options,
    partition_data_options,
    run_folder_options,
    threads_option,
)


@click.group()
def sr() -> None:
    """Train the face upscaler (64 -> 128 px super-resolution) that faces pass through when
    an image of 128 px or more is asked for.

    \b
    Examples:
      tlgan sr train --data ../shared/data/celeba-subset --out runs/upscaler
      tlgan sr train --data ../shared/data/celeba-subset --out runs/upscaler --resume
    """


@sr.command()
@partition_data_options
@device_option
@threads_option
@click.option("--steps", type=int, default=6000, show_default=True,
              help="Most training steps (the learning rate's cosine decay spans them).")
@click.option("--batch", type=int, default=16, show_default=True,
              help="Training patches per step.")
@click.option("--patch", type=int, default=64, show_default=True,
              help="Side of the target patches (px); the inputs are scale times smaller.")
@click.option("--resolution", type=int, default=128, show_default=True,
              help="Side the crops are decoded at (px): the targets' resolution.")
@click.option("--scale", type=click.IntRange(2, 4), default=2, show_default=True,
              help="Upscaling factor.")
@click.option("--channels", type=int, default=48, show_default=True,
              help="Feature channels of the network.")
@click.option("--blocks", type=int, default=6, show_default=True,
              help="Residual blocks of the network.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@early_stop_options(val_images=256)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of initialisation, patches and degradations.")
@run_folder_options
def train(data: Path, out: Path, device: str, steps: int, batch: int, patch: int,
          resolution: int, scale: int, channels: int, blocks: int, lr: float,
          eval_every: int, patience: int, val_images: int, max_train_images: int,
          max_minutes: float | None, seed: int, work: Path | None, resume: bool,
          quiet: bool) -> None:
    """Train a face upscaler and write a weights folder.

    Each step takes random patches of partition-0 crops, area-downscales them, degrades
    them the way the generator's faces differ from real crops (mild blur, a faint
    checkerboard, noise, JPEG, colour shifts) and fits the network (a residual over bicubic)
    with the Charbonnier loss; early-stopped on the PSNR of partition 1. The folder
    (upscaler.safetensors + config.json + preview.png) loads with `--upscaler OUT`
    (the setting TLGAN_UPSCALER for the API). About 0.4 s a step at one torch thread.

    \b
    Examples:
      tlgan sr train --data ../shared/data/celeba-subset --out runs/sr --steps 20 \\
          --eval-every 10 --val-images 16 --max-train-images 64
      tlgan sr train --data ../shared/data/celeba-subset \\
          --out tlgan/upscale/weights/celeba-face-sr2x --max-minutes 35
    """
    from tlgan.upscale.sr_training import UpscalerTrainConfig, train_upscaler

    cfg = UpscalerTrainConfig(
        data=str(data), out=str(out), work=None if work is None else str(work),
        device=device, seed=seed, steps=steps, batch=batch, patch=patch,
        resolution=resolution, scale=scale, channels=channels, blocks=blocks, lr=lr,
        eval_every=eval_every, patience=patience, val_images=val_images,
        max_train_images=max_train_images, max_minutes=max_minutes,
        checkpoint_every=eval_every, resume=resume, progress=not quiet)
    written = train_upscaler(cfg, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps({"out": str(out), **written["metrics"],
                           "steps": written["training"]["steps_run"],
                           "best_step": written["training"]["best_step"]}))
