"""``tlgan generator``: train a face generator, pack training images, score a generator."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tlgan.cli.options import device_option, threads_option

DATA_HELP = ("A CelebA-format directory (list_eval_partition.txt + img_align_celeba/: "
             "partition 0 trains, 2 tests), a plain folder of images, or a .npz pack "
             "from `tlgan generator pack`.")
EXTRACTOR_HELP = ("Extractor (registered name or weights folder) whose embeddings the Fréchet "
                  "distance uses; 'none' trains without the metric and exports the last snapshot.")


@click.group()
def generator() -> None:
    """Train our own face generator, pack its training data, score generators.

    \b
    Examples:
      tlgan generator pack --data celeba-subset --out pack/celeba64.npz
      tlgan generator train --data pack/celeba64.npz --out weights/celeba-dcgan64 \\
          --device cuda --iterations 30000 --batch 128
      tlgan generator score --generator dcgan-digiface64 --data celeba-subset
    """


@generator.command()
@click.option("--data", required=True, type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Weights folder to write (replaced atomically at the end).")
@click.option("--resolution", type=int, default=64, show_default=True,
              help="Training resolution (the DCGAN generator renders 64x64).")
@click.option("--iterations", type=int, default=30_000, show_default=True,
              help="Total iterations (one D and one G step each); with --resume, the target.")
@click.option("--batch", type=int, default=128, show_default=True, help="Batch size.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of initialisation, data order, latents and augmentation.")
@device_option
@threads_option
@click.option("--loss", type=click.Choice(["hinge", "ns"]), default="hinge", show_default=True,
              help="Adversarial loss: hinge, or ns (non-saturating logistic).")
@click.option("--lr-g", type=float, default=2e-4, show_default=True, help="Adam lr of G.")
@click.option("--lr-d", type=float, default=2e-4, show_default=True, help="Adam lr of D.")
@click.option("--beta1", type=float, default=0.5, show_default=True, help="Adam beta1.")
@click.option("--beta2", type=float, default=0.999, show_default=True, help="Adam beta2.")
@click.option("--ema-decay", type=float, default=0.999, show_default=True,
              help="Decay of the EMA of G's weights (what is sampled, scored and exported).")
@click.option("--d-arch", type=click.Choice(["dcgan", "sngan"]), default="dcgan",
              show_default=True,
              help="Discriminator: dcgan (the tutorial's D shape) or sngan (deeper, 3x3+4x4 "
                   "conv pairs).")
@click.option("--d-norm", type=click.Choice(["spectral", "batch", "none"]), default="spectral",
              show_default=True, help="Discriminator normalisation.")
@click.option("--augment", default="translation", show_default=True,
              help="DiffAugment policy for D's inputs: comma list of translation, color, "
                   "cutout, or none.")
@click.option("--flip/--no-flip", default=True, show_default=True,
              help="Random horizontal flips of real images.")
@click.option("--amp/--no-amp", default=False, show_default=True,
              help="bf16 autocast (CUDA only).")
@click.option("--ngf", type=int, default=64, show_default=True,
              help="G width (64 is the registry's DCGAN; smaller only for quick tests).")
@click.option("--ndf", type=int, default=64, show_default=True, help="D width.")
@click.option("--sample-every", type=int, default=1000, show_default=True,
              help="Write a sample grid (fixed latents) every N iterations.")
@click.option("--checkpoint-every", type=int, default=1000, show_default=True,
              help="Write a resumable checkpoint every N iterations.")
@click.option("--eval-every", type=int, default=2500, show_default=True,
              help="Compute the Fréchet distance every N iterations (and at the end).")
@click.option("--fd-samples", type=int, default=2000, show_default=True,
              help="Generated faces (and training faces for the floor) per FD evaluation.")
@click.option("--extractor", default=None, show_default="registry DEFAULT", help=EXTRACTOR_HELP)
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
              show_default="OUT.work", help="Folder for checkpoints, sample grids and logs.")
@click.option("--resume", is_flag=True,
              help="Continue from the work folder's checkpoint (starts fresh if there is none).")
@click.option("--cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A .npz file caching the decoded images of a directory between runs.")
@click.option("--name", default=None, show_default="OUT's name",
              help="Generator name recorded in config.json.")
@click.option("--time-limit", type=float, default=None, show_default="none",
              help="Stop after this many seconds of training, checkpoint, and export the best "
                   "snapshot so far (for machines lent for a fixed time; --resume continues).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(data: Path, out: Path, resolution: int, iterations: int, batch: int, seed: int,
          device: str, loss: str, lr_g: float, lr_d: float, beta1: float, beta2: float,
          ema_decay: float, d_arch: str, d_norm: str, augment: str, flip: bool, amp: bool,
          ngf: int,
          ndf: int, sample_every: int, checkpoint_every: int, eval_every: int, fd_samples: int,
          extractor: str | None, work: Path | None, resume: bool, cache: Path | None,
          name: str | None, time_limit: float | None, quiet: bool) -> None:
    """Train a DCGAN face generator (z in R^100 -> 64x64) and write a weights folder.

    The folder (generator.safetensors + config.json + samples.png) loads with
    `--generator OUT` everywhere. Checkpoints, sample grids and log.jsonl go to OUT.work;
    after an interruption (Ctrl-C saves a checkpoint) rerun with --resume. The Fréchet
    distance to the test faces is printed beside the real-vs-real floor at each evaluation,
    and the best snapshot is the one exported. Needs a GPU for real use: on CPU a full run
    takes more than a day. The DCGAN tutorial's recipe, for comparison: --loss ns
    --d-norm batch --ema-decay 0 --augment none --no-flip.

    \b
    Examples:
      tlgan generator train --data celeba-subset --out runs/try --iterations 20 --batch 16
      tlgan generator train --data pack/celeba64.npz --out weights/celeba-dcgan64 \\
          --device cuda --iterations 30000 --batch 128 --extractor weights/extractor
      tlgan generator train --data pack/celeba64.npz --out weights/celeba-dcgan64 \\
          --device cuda --iterations 30000 --batch 128 --resume
    """
    from tlgan.training.config import GeneratorTrainConfig
    from tlgan.training.trainer import train as run_training

    cfg = GeneratorTrainConfig(
        data=str(data), out=str(out), resolution=resolution, iterations=iterations,
        batch=batch, seed=seed, device=device, ngf=ngf, ndf=ndf, loss=loss, lr_g=lr_g,
        lr_d=lr_d, beta1=beta1, beta2=beta2, ema_decay=ema_decay, d_arch=d_arch,
        d_norm=d_norm,
        augment=augment, flip=flip, amp=amp, sample_every=sample_every,
        checkpoint_every=checkpoint_every, eval_every=eval_every, fd_samples=fd_samples,
        extractor=extractor, work=None if work is None else str(work), resume=resume,
        cache=None if cache is None else str(cache), name=name, progress=not quiet,
        time_limit=time_limit,
    )
    result = run_training(cfg)
    fd = result.fd_best
    floor = result.fd_floor
    click.echo(json.dumps({
        "out": str(result.out), "iterations": result.iterations,
        "snapshot_iteration": result.best_iteration, "fd": fd, "floor": floor,
        "iterations_per_s": round(result.iterations_per_s, 3),
        "stopped_by_time_limit": result.config.get("stopped_by_time_limit", False),
    }))


@generator.command()
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="A CelebA-format directory or a plain folder of images.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .npz pack file to write.")
@click.option("--resolution", type=int, default=64, show_default=True,
              help="Images are centre-cropped square and area-resized to this size.")
@click.option("--encoding", type=click.Choice(["jpeg", "raw"]), default="jpeg", show_default=True,
              help="jpeg: JPEG bytes (4:4:4), about 3x smaller; raw: lossless uint8.")
@click.option("--quality", type=int, default=95, show_default=True, help="JPEG quality.")
def pack(data: Path, out: Path, resolution: int, encoding: str, quality: int) -> None:
    """Decode training (partition 0) and test (partition 2) images once into a .npz pack.

    The pack records the source's checksum, so training on it records the same data
    checksum as training on the directory. At 64x64 the 12.5k+1.5k images of the shared
    CelebA subset take about 47 MiB as JPEG (quality 95), small enough to carry to a GPU
    machine; raw uint8 takes about 147 MiB.

    \b
    Examples:
      tlgan generator pack --data celeba-subset --out pack/celeba64.npz
      tlgan generator pack --data faces/ --out pack/faces64.npz --encoding raw
    """
    from tlgan.training.data import load_image_set, save_pack

    if data.is_file():
        raise ValueError(f"data: {data} is a file; pack a directory of images")
    images = load_image_set(data, resolution, progress=True)
    size = save_pack(images, out, encoding=encoding, quality=quality)
    click.echo(json.dumps({
        "out": str(out), "bytes": size, "mib": round(size / 2**20, 1),
        "n_train": len(images.train), "n_test": 0 if images.test is None else len(images.test),
        "resolution": resolution, "encoding": encoding, "source_sha256": images.source_sha256,
    }))


@generator.command()
@click.option("--generator", "generator_spec", required=True,
              help="Registered generator name, weights folder, or plug-in .json file.")
@click.option("--data", required=True, type=click.Path(path_type=Path), help=DATA_HELP)
@click.option("--n", type=int, default=2000, show_default=True,
              help="Generated faces (and training faces for the floor).")
@click.option("--extractor", default=None, show_default="registry DEFAULT",
              help="Extractor (registered name or weights folder) giving the embeddings.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latents.")
@click.option("--truncation", type=float, default=1.0, show_default=True,
              help="Truncation psi in (0, 1]: latents are N(0, I) times psi.")
@device_option
@threads_option
def score(generator_spec: str, data: Path, n: int, extractor: str | None, seed: int,
          truncation: float, device: str) -> None:
    """Print the Fréchet distance of a generator's faces to the real test faces, as JSON.

    {"fd", "floor", "n", ...}: floor is the real-vs-real figure (n training faces vs the
    test faces), the best a generator can be expected to reach.

    \b
    Examples:
      tlgan generator score --generator dcgan-digiface64 --data celeba-subset
      tlgan generator score --generator runs/my-gen --data pack/celeba64.npz
      tlgan generator score --generator celeba-dcgan64 --data celeba-subset --truncation 0.8
    """
    from tlgan.training.scoring import score_generator

    if (extractor or "").lower() == "none":
        raise ValueError("extractor: score needs an extractor; 'none' is only for train")
    result = score_generator(generator_spec, str(data), n=n, extractor=extractor,
                             device=device, seed=seed, truncation=truncation)
    click.echo(json.dumps(result))
