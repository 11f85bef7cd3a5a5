"""``tlgan generate`` and ``tlgan info``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tlgan.cli.options import (
    count,
    device_option,
    generator_option,
    threads_option,
    upscaler_option,
)
from tlgan.critic import DEFAULT_CANDIDATES, MAX_CANDIDATES, MIN_CANDIDATES
from tlgan.latents import DEFAULT_TRUNCATION


@click.command()
@click.option("--seeds", default="1-8", show_default=True,
              help="Seeds to render: a range '1-8', a list '3,5,9' or both '1-4,10'.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (created if missing).")
@click.option("--truncation", type=float, default=DEFAULT_TRUNCATION, show_default=True,
              help="Truncation psi in (0, 1]: smaller gives more typical faces.")
@click.option("--size", type=int, default=None, show_default="generator resolution",
              help="Output size in pixels (16..1024).")
@click.option("--format", "fmt", type=click.Choice(["png", "jpeg", "webp"]), default="png",
              show_default=True)
@click.option("--quality", type=click.Choice(["raw", "ranked", "refined"]), default=None,
              show_default="raw (the evidence: docs/models.md)",
              help="raw: each seed's own face; ranked: the most realistic (by the critic) of "
                   "--candidates faces derived from the seed (candidate 0 is the raw face); "
                   "refined: the seed's latent moved up the critic's score, orthogonal to the "
                   "shipped bundle's axes.")
@click.option("--candidates", type=click.IntRange(MIN_CANDIDATES, MAX_CANDIDATES),
              default=DEFAULT_CANDIDATES, show_default=True,
              help="Candidates per seed of --quality ranked.")
@click.option("--critic", default=None, show_default="the one registered for the generator",
              help="Realism critic: registered name, weights folder, or none.")
@generator_option
@upscaler_option
@device_option
@threads_option
def generate(seeds: str, out: Path, truncation: float, size: int | None, fmt: str,
             quality: str | None, candidates: int, critic: str | None,
             generator: str | None, upscaler: str | None, device: str) -> None:
    """Render one face per seed, plus its latent as JSON.

    Writes OUT/seedNNNN.<format> and OUT/seedNNNN.json ({"seed", "latent", "generator"};
    ranked faces add "quality", "candidate" and "realism", refined ones "quality" and
    "realism"). The same seed gives
    byte-identical images on every run; --quality raw gives the faces of before the critic.
    At --size 128 or more the faces pass through the face upscaler (2x super-resolution)
    before the Lanczos resize.

    \b
    Examples:
      tlgan generate --seeds 1-8 --out faces/
      tlgan generate --seeds 42 --out faces/ --truncation 0.7 --size 256
      tlgan generate --seeds 1-64 --out faces/ --quality ranked --candidates 8
      tlgan generate --seeds 1-64 --out faces/ --quality refined
      tlgan generate --seeds 1-8 --out faces/ --quality raw
    """
    from tlgan.assembly import NONE, load_upscaler_for
    from tlgan.axis_work.bundle_store import load_bundle
    from tlgan.critic.critic_weights import load_critic
    from tlgan.generators import load_generator
    from tlgan.latents import check_truncation, latent_to_list, parse_seeds
    from tlgan.pipeline import Models
    from tlgan.pipeline.ranking import RAW, REFINED, resolve_quality, seeded_latents
    from tlgan.upscale.upscaler import for_size
    from tlgan_base.artifact import write_bytes_atomic, write_json_atomic
    from tlgan_base.image_codec import check_size, encode_image
    from tlgan_base.progress import progress_bar

    seed_list = parse_seeds(seeds)
    check_truncation(truncation)
    check_size(size)
    gen = load_generator(generator, device)
    judge = None
    if quality != RAW and (critic or "").lower() != NONE:
        judge = load_critic(critic, gen)
    models = Models(gen, critic=judge)
    axes = None
    if judge is not None and resolve_quality(quality, judge, gen.name) == REFINED:
        axes = load_bundle(None, generator=gen.name, latent_size=gen.latent_size,
                           generator_sha256=gen.sha256, spaces=gen.space_sizes()).directions
    up = load_upscaler_for(upscaler, size, device)
    out.mkdir(parents=True, exist_ok=True)
    batch = 64
    with progress_bar(total=len(seed_list), desc="rendering", unit="face",
                      enabled=len(seed_list) >= 16) as bar:
        for start in range(0, len(seed_list), batch):
            chunk = seed_list[start : start + batch]
            picked = seeded_latents(models, chunk, truncation, quality, candidates, axes)
            images = for_size(up, gen.render(picked.latents), size)
            for i, (seed, zi, img) in enumerate(zip(chunk, picked.latents, images,
                                                    strict=True)):
                stem = out / f"seed{seed:04d}"
                write_bytes_atomic(stem.with_suffix(f".{fmt}"), encode_image(img, fmt, size))
                ranked = ({} if picked.realism is None else {
                    "quality": picked.quality, "realism": round(float(picked.realism[i]), 4)})
                if picked.chosen is not None:
                    ranked.update(candidates=picked.candidates,
                                  candidate=int(picked.chosen[i]))
                write_json_atomic(stem.with_suffix(".json"), {
                    "seed": seed, "truncation": truncation, "generator": gen.name,
                    "latent": latent_to_list(zi), **ranked,
                })
            bar.update(len(chunk))
    click.echo(f"wrote {count(len(seed_list), 'face')} to {out}")


#: what ``tlgan info`` shows of each entry, when it has it
INFO_KEYS = ("latent_size", "resolution", "input_size", "num_attributes", "generator", "axes",
             "id", "status")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(as_json: bool) -> None:
    """List registered generators, extractors, photo encoders, realism critics, upscalers and
    axis bundles.

    \b
    Examples:
      tlgan info
      tlgan info --json
    """
    from tlgan.catalog import describe_all

    data = describe_all()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for section, entries in data.items():
        click.echo(f"{section}:")
        for e in entries:
            mark = "*" if e.get("default") else " "
            extra = ", ".join(f"{k}={e[k]}" for k in INFO_KEYS if e.get(k) is not None)
            click.echo(f" {mark} {e['name']:<20} {extra}".rstrip())
            if e.get("description"):
                click.echo(f"     {e['description']}")
    click.echo("(* = default)")
