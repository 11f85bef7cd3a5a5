"""``tlgan photo edit``: a whole photo in, the same photo out with one face edited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tlgan.cli.encode import (
    _parse_move,
    bundle_option,
    encoder_option,
    hold_references_option,
    locality_option,
)
from tlgan.cli.options import device_option, generator_option, threads_option

if TYPE_CHECKING:
    from tlgan.photos.faces import FaceDetector
    from tlgan.pipeline import Pipeline

#: the output's format by its suffix
FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".webp": "webp"}


def _load(generator: str | None, bundle: str | None, encoder: str | None, device: str
          ) -> Pipeline:
    """The models of a photo edit (tests replace this with tiny ones)."""
    from tlgan.models import load_pipeline

    return load_pipeline(generator=generator, bundle=bundle, device=device, encoder=encoder)


def _detector() -> FaceDetector:
    """The product's face detector (tests replace it)."""
    from tlgan.photos.faces import HaarFaceDetector

    return HaarFaceDetector()


def _reuse(path: Path | None) -> dict[str, Any]:
    """``latent``, ``adapter``, ``eyes`` and ``face`` of an earlier OUT.json (or nothing)."""
    if path is None:
        return {}
    from tlgan_base.artifact import read_json_object

    obj = read_json_object(path, "reuse")
    missing = [k for k in ("latent", "adapter", "eyes") if k not in obj]
    if missing:
        raise ValueError(f"reuse: {path} has no {', '.join(missing)} (expected the OUT.json "
                         "that `tlgan photo edit` writes)")
    return {k: obj[k] for k in ("latent", "adapter", "eyes", "face")}


@click.group()
def photo() -> None:
    """Edit faces in whole photos (any size; the rest of the photo is kept byte for byte).

    \b
    Examples:
      tlgan photo edit me.jpg --move Smiling=1.5 --lock Male --out me-smiling.jpg
    """


@photo.command("edit")
@click.argument("photo_path", metavar="IN", type=click.Path(exists=True, dir_okay=False,
                                                              path_type=Path))
@click.option("--move", "moves", multiple=True, metavar="AXIS=DISTANCE",
              help="Move along an axis (repeatable), e.g. --move Smiling=1.5.")
@click.option("--lock", "locks", multiple=True, metavar="AXIS",
              help="Keep an axis' attribute where it is (repeatable), e.g. --lock Male.")
@click.option("--face", type=click.IntRange(min=0), default=None, show_default="the largest",
              help="Which face to edit (index into the faces found, largest first; OUT.json "
                   "lists them).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The edited photo: .jpg, .jpeg, .png or .webp (its format); OUT.json "
                   "beside it holds latent, adapter, eyes, faces, face, features, unheld.")
@click.option("--quality", type=click.IntRange(1, 100), default=92, show_default=True,
              help="JPEG/WebP quality.")
@click.option("--reuse", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="An earlier OUT.json of the same photo: its latent, adapter "
                                 "and eyes skip finding, encoding and tuning.")
@locality_option
@hold_references_option
@generator_option
@bundle_option
@encoder_option
@device_option
@threads_option
def edit_photo_command(photo_path: Path, moves: tuple[str, ...], locks: tuple[str, ...],
                       face: int | None, out: Path, quality: int, reuse: Path | None,
                       locality: bool | None, hold_references: bool | None,
                       generator: str | None, bundle: str | None, encoder: str | None,
                       device: str) -> None:
    """Edit one face of a photo and write the whole photo, edited, at its own resolution
    (what POST /photo/edit does): the face is found and aligned, encoded, a photo adapter
    tuned to it, moved (locks held), and the change composed back under a soft face mask.

    \b
    Examples:
      tlgan photo edit me.jpg --move Smiling=1.5 --out me-smiling.jpg
      tlgan photo edit group.png --face 1 --move Young=-1 --lock Male --out older.png
      tlgan photo edit me.jpg --move Smiling=3 --reuse me-smiling.json --out me-more.jpg
    """
    import numpy as np

    from tlgan.latents import latent_to_list
    from tlgan.photos.adapter import decode_adapter, encode_adapter
    from tlgan.photos.usecase import PhotoEditRequest, photo_edit
    from tlgan_base.artifact import write_bytes_atomic, write_json_atomic
    from tlgan_base.images import encode_image

    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"out: {out.name} must end in .jpg, .jpeg, .png or .webp")
    parsed = dict(_parse_move(m) for m in moves)
    earlier = _reuse(reuse)
    pipeline = _load(generator, bundle, "none" if earlier else encoder, device)
    latent = (None if not earlier else np.asarray(earlier["latent"], np.float32))
    request = PhotoEditRequest(
        moves=parsed, locked=list(locks), face=face if face is not None else earlier.get("face"),
        latent=latent,
        adapter=decode_adapter(earlier["adapter"], pipeline.generator) if earlier else None,
        eyes=earlier.get("eyes"), locality=locality, hold_references=hold_references)
    done = photo_edit(pipeline, photo_path, None if earlier else _detector(), request)
    work = done.work
    located = done.photo.located
    faces, index = done.photo.answer_faces()
    features = (None if work.probs is None else
                {a: round(float(p), 4) for a, p in zip(work.attributes, work.probs,
                                                       strict=True)})
    adapter = work.moved.adapter
    write_bytes_atomic(out, encode_image(done.image, fmt, quality=quality))
    write_json_atomic(out.with_suffix(".json"), {
        "latent": latent_to_list(work.moved.z),
        "adapter": None if adapter is None else encode_adapter(adapter),
        "eyes": [[float(v) for v in e] for e in located.eyes], "faces": faces,
        "face": index, "features": features, "unheld": work.unheld})
    seconds = ", ".join(f"{k} {v:.2f} s" for k, v in done.timings.items())
    click.echo(json.dumps({"out": str(out), "face": index, "unheld": work.unheld}))
    click.echo(f"{out.name}: {done.image.shape[1]}x{done.image.shape[0]} ({seconds})",
               err=True)
