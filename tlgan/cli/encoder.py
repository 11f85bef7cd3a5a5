"""``tlgan encoder``: train a photo encoder for a generator."""

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
from tlgan.encoders.losses import LossWeights


@click.group()
def encoder() -> None:
    """Train the photo encoder (face photo -> latent z) that `tlgan encode` and POST /encode
    start from.

    \b
    Examples:
      tlgan encoder train --data ../shared/data/celeba-subset --out runs/encoder
      tlgan encoder train --data ../shared/data/celeba-subset --out runs/encoder --resume
    """


@encoder.command()
@partition_data_options
@generator_option
@click.option("--extractor", default=None, show_default="registry DEFAULT",
              help="Extractor (registered name or weights folder) of the perceptual term.")
@device_option
@threads_option
@click.option("--steps", type=int, default=6000, show_default=True,
              help="Most training steps (the learning rate's cosine decay spans them).")
@click.option("--batch", type=int, default=32, show_default=True,
              help="Generated pairs and real crops per step (each).")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--real-weight", type=float, default=10.0, show_default=True,
              help="Weight of the real crops' inversion loss against the latent loss.")
@click.option("--perceptual-weight", type=float, default=LossWeights.perceptual,
              show_default=True, help="Weight of 1 - embedding cosine against the pixel MSE.")
@click.option("--shell-weight", type=float, default=LossWeights.shell, show_default=True,
              help="Weight of the Gaussian-shell penalty (|z|/sqrt(L) - 1)^2.")
@early_stop_options(val_images=512)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of initialisation, data order and latents.")
@run_folder_options
def train(data: Path, out: Path, generator: str | None, extractor: str | None, device: str,
          steps: int, batch: int, lr: float, real_weight: float, perceptual_weight: float,
          shell_weight: float, eval_every: int, patience: int, val_images: int,
          max_train_images: int, max_minutes: float | None, seed: int, work: Path | None,
          resume: bool, quiet: bool) -> None:
    """Train an encoder (64x64 photo -> z) for a generator and write a weights folder.

    Each step fits generated pairs (z, G(z)) sampled on the fly (latent MSE) and real
    partition-0 crops (pixel MSE + extractor-embedding distance + Gaussian-shell penalty of
    G(E(x))); early-stopped on partition 1. The folder (encoder.safetensors + config.json +
    reconstructions.png) is tied to the generator's sha256 and loads with `--encoder OUT`.
    About 1 s a step on 2 CPU cores.

    \b
    Examples:
      tlgan encoder train --data ../shared/data/celeba-subset --out runs/enc --steps 20 \\
          --eval-every 10 --val-images 32
      tlgan encoder train --data ../shared/data/celeba-subset \\
          --out tlgan/encoders/weights/celeba-dcgan64-encoder --steps 3000 --max-minutes 70
    """
    from tlgan.encoders.encoder_training import EncoderTrainConfig, train_encoder

    cfg = EncoderTrainConfig(
        data=str(data), out=str(out), generator=generator, extractor=extractor,
        work=None if work is None else str(work), device=device, seed=seed, steps=steps,
        batch=batch, lr=lr, real_weight=real_weight, perceptual_weight=perceptual_weight,
        shell_weight=shell_weight, eval_every=eval_every, patience=patience,
        val_images=val_images, max_train_images=max_train_images, max_minutes=max_minutes,
        checkpoint_every=eval_every, resume=resume, progress=not quiet)
    written = train_encoder(cfg, log=lambda m: click.echo(m, err=True))
    click.echo(json.dumps({"out": str(out), **written["metrics"],
                           "steps": written["training"]["steps_run"],
                           "best_step": written["training"]["best_step"]}))
