"""``tlgan axes discover``: directions found without labels, and what they move."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tlgan.cli.options import device_option, generator_option, threads_option


@click.command()
@click.option("--k", "k", type=click.IntRange(1, 64), default=10, show_default=True,
              help="Number of directions.")
@click.option("--method", type=click.Choice(["sefa", "pca"]), default="sefa",
              show_default=True,
              help="sefa: closed form from the first layer's weights; pca: principal "
                   "components of an intermediate activation of sampled latents.")
@click.option("--faces", type=click.IntRange(1, 10_000), default=32, show_default=True,
              help="Faces moved -3/+3 along each direction to measure what it changes.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write (directions.npz, strips.png, config.json).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the directions).")
@click.option("--bundle", default=None, show_default="the generator's shipped bundle",
              help="Axis bundle whose named axes are compared ('none': no comparison).")
@click.option("--extractor", default=None, show_default="registry DEFAULT",
              help="Registered extractor name or weights folder.")
@generator_option
@device_option
@threads_option
def discover(k: int, method: str, faces: int, out: Path | None, as_json: bool,
             bundle: str | None, extractor: str | None, generator: str | None,
             device: str) -> None:
    """List the top K unsupervised directions, the attributes each moves most and its
    nearest named axis.

    \b
    Examples:
      tlgan axes discover
      tlgan axes discover --method pca --k 5 --out runs/discovered
      tlgan axes discover --json > directions.json
    """
    from tlgan.assembly import load_pipeline
    from tlgan.axis_work.discovery import discover as find
    from tlgan.axis_work.discovery import save_discovered

    pipeline = load_pipeline(generator=generator, extractor=extractor, bundle=bundle,
                             device=device)
    found = find(pipeline, method, k, faces=faces)
    if out is not None:
        save_discovered(pipeline, found, out)
    rows = found.rows()
    if as_json:
        click.echo(json.dumps({"method": method, "directions": rows}))
    else:
        score = "eigenvalue" if method == "sefa" else "explained variance"
        for r in rows:
            moves = ", ".join(f"{a} {v:+.2f}" for a, v in r["moves"].items()) or "-"
            near = r["nearest_axis"]
            near_s = f"{near['name']} ({near['cosine']:+.2f})" if near else "-"
            click.echo(f"{r['index']:>2}  {score} {r['score']:.4g}  moves: {moves}  "
                       f"nearest axis: {near_s}")
    if out is not None:
        click.echo(f"wrote {out} (directions.npz, strips.png, config.json)", err=as_json)
