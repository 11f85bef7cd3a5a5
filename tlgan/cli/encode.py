"""``tlgan encode`` (face photos -> latents) and ``tlgan edit`` (move a latent along axes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tlgan.cli.options import (
    count,
    device_option,
    generator_option,
    threads_option,
    upscaler_option,
)
from tlgan.encoders import DEFAULT_STARTS, DEFAULT_STEPS

encoder_option = click.option(
    "--encoder", default=None, show_default="the one registered for the generator",
    help="Photo encoder: registered name or weights folder from `tlgan encoder train`.")
bundle_option = click.option(
    "--bundle", default=None, show_default="the bundle shipped for the generator",
    help="Axis bundle folder.")
locality_option = click.option(
    "--locality/--no-locality", default=None, show_default="on when the bundle ships masks",
    help="Keep each moved axis's change inside the region its attribute lives in.")
hold_references_option = click.option(
    "--hold-references/--no-hold-references", default=None,
    show_default="on with an extractor",
    help="Hold gender and age per face when the edit does not move them.")
realism_option = click.option(
    "--realism/--no-realism", default=None, show_default="off",
    help="Hold each edited face's realism: correct it up the critic's score (orthogonal to "
         "the moves and locks) when it falls more than the tolerance below the start face "
         "(with a critic loaded, every edit is checked either way).")
#: photos encoded together (one refinement batch)
CHUNK = 16


def _read_latent(path: Path, size: int) -> Any:
    from tlgan.latents import parse_latent
    from tlgan_base.artifact import read_json_object

    obj = read_json_object(path, "latent")
    if "latent" not in obj:
        raise ValueError(f"latent: {path} has no 'latent' entry (expected the JSON that "
                         "`tlgan encode` or `tlgan generate` writes)")
    return parse_latent(obj["latent"], size, f"latent ({path})")


@click.command()
@click.argument("photos", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for NAME.png (reconstruction), NAME.json (latent) and "
                   "NAME.meta.json (quality and provenance).")
@click.option("--steps", type=click.IntRange(min=0), default=DEFAULT_STEPS, show_default=True,
              help="Refinement steps after the encoder (0: the encoder alone).")
@click.option("--starts", type=click.IntRange(min=1), default=DEFAULT_STARTS,
              show_default=True,
              help="Starting points of refinement (the encoder's z and perturbations of it; "
                   "the best is kept after a quarter of the steps).")
@click.option("--size", type=int, default=None, show_default="generator resolution",
              help="Size of the written reconstruction in pixels.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpeg", "webp"]), default="png",
              show_default=True, help="Image format of the reconstruction.")
@click.option("--face", type=click.IntRange(min=0), default=None,
              show_default="the largest",
              help="Which face of each photo to encode (index into the faces found, largest "
                   "first; NAME.meta.json lists them).")
@click.option("--adapter-parts", type=click.Choice(["bn", "bn+last"]), default=None,
              show_default="no adapter",
              help="Also tune a photo adapter to each face (what POST /encode's adapter_parts "
                   "does): 'bn+last' (BatchNorm scales and biases and the last convolution: "
                   "closest to the photo) or 'bn' (BatchNorm only: no fine grid when shown "
                   "enlarged). NAME.png is then rendered with it and NAME.json holds it "
                   "beside the latent, a body POST /edit renders with it; `tlgan edit` "
                   "reads only the latent.")
@generator_option
@encoder_option
@click.option("--extractor", default=None, show_default="registry DEFAULT",
              help="Extractor of the perceptual term and the quality figures ('none': off).")
@upscaler_option
@device_option
@threads_option
def encode(photos: tuple[Path, ...], out: Path, steps: int, starts: int, size: int | None,
           fmt: str, face: int | None, adapter_parts: str | None,
           generator: str | None, encoder: str | None, extractor: str | None,
           upscaler: str | None, device: str) -> None:
    """Encode face photos into the generator's latent space.

    Any photo (JPEG, PNG or WebP): EXIF orientation is applied, the faces are found and the
    chosen one (--face; default the largest) is aligned to CelebA's framing.
    NAME.json holds {"latent": [...]} (with --adapter-parts also "adapter"): a body POST
    /edit accepts as it is, and what `tlgan edit` reads.

    \b
    Examples:
      tlgan encode photo.jpg --out encoded/
      tlgan encode photos/*.jpg --out encoded/ --steps 100 --size 256
      tlgan encode photo.jpg --out encoded/ --adapter-parts bn
      tlgan edit encoded/photo.json --move Smiling=2 --lock Male --out edited/
      curl -s localhost:8000/edit -H 'Content-Type: application/json' -d @encoded/photo.json
    """
    import numpy as np

    from tlgan.assembly import load_pipeline, load_upscaler_for
    from tlgan.latents import latent_to_list
    from tlgan.photos.adapter import Adapter, TuneSettings, encode_adapter
    from tlgan.photos.faces import HaarFaceDetector
    from tlgan.photos.prepare import align_photo, faces_json
    from tlgan.photos.usecase import adapt_encoded
    from tlgan.upscale.upscaler import for_size
    from tlgan_base.artifact import sha256_file, write_bytes_atomic, write_json_atomic
    from tlgan_base.image_codec import check_size, encode_image
    from tlgan_base.progress import progress_bar

    check_size(size)
    pipeline = load_pipeline(generator=generator, extractor=extractor, bundle="none",
                             device=device, encoder=encoder, upscaler="none")
    up = load_upscaler_for(upscaler, size, device)
    if pipeline.encoder is None:
        raise ValueError(f"encoder: no photo encoder is registered for generator "
                         f"{pipeline.generator.name!r}; train one with `tlgan encoder train` "
                         "and pass --encoder FOLDER")
    r = pipeline.resolution
    detector = HaarFaceDetector()
    out.mkdir(parents=True, exist_ok=True)
    stems = [p.stem for p in photos]
    if len(set(stems)) != len(stems):
        raise ValueError("photos: two photos have the same name; their outputs would collide")
    with progress_bar(total=len(photos), desc="encoding", unit="photo",
                      enabled=len(photos) > 1) as bar:
        for start in range(0, len(photos), CHUNK):
            chunk = photos[start:start + CHUNK]
            found = [align_photo(p, detector, r, face, name=f"photo {p}",
                                 face_name=f"face (photo {p})") for p in chunk]
            arr = np.stack([f.aligned for f in found])
            result = pipeline.encode(arr, steps, starts=starts)
            adapters: list[Adapter] = []
            if adapter_parts is not None:
                result, adapters = adapt_encoded(pipeline, result, arr,
                                                 TuneSettings(parts=adapter_parts))
            written = for_size(up, result.images, size)
            for i, path in enumerate(chunk):
                stem = out / path.stem
                write_bytes_atomic(stem.with_suffix(f".{fmt}"),
                                   encode_image(written[i], fmt, size))
                body: dict[str, Any] = {"latent": latent_to_list(result.latents[i])}
                if adapters:
                    body["adapter"] = encode_adapter(adapters[i])
                write_json_atomic(stem.with_suffix(".json"), body)
                meta: dict[str, Any] = {
                    "photo": path.name, "photo_sha256": sha256_file(path),
                    "generator": pipeline.generator.name,
                    "generator_sha256": pipeline.generator.sha256,
                    "encoder": pipeline.encoder.name, "steps": steps, "starts": starts,
                    "adapter_parts": adapter_parts,
                    "quality": result.quality[i],
                    "faces": faces_json(found[i].faces), "face": found[i].face}
                if result.probs is not None:
                    meta["features"] = pipeline.features_dict(result.probs[i])
                write_json_atomic(stem.with_suffix(".meta.json"), meta)
                q = result.quality[i]
                click.echo(f"{path.name}: PSNR {q['psnr']:.2f} dB"
                           + (f", embedding cosine {q['embedding_cosine']:.3f}, label "
                              f"agreement {q['label_agreement']:.3f}"
                              if "embedding_cosine" in q else ""), err=True)
            bar.update(len(chunk))
    click.echo(f"wrote {count(len(photos), 'encoded photo')} to {out}")


def _parse_move(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise ValueError(f"move: expected AXIS=DISTANCE (e.g. Smiling=2), got {text!r}"
                         ) from None


@click.command()
@click.argument("latents", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--move", "moves", multiple=True, metavar="AXIS=DISTANCE",
              help="Move along an axis (repeatable), e.g. --move Smiling=2.")
@click.option("--lock", "locks", multiple=True, metavar="AXIS",
              help="Keep an axis' attribute where it is (repeatable), e.g. --lock Male.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for NAME.png and NAME.json (the moved latent) of each NAME.json.")
@click.option("--size", type=int, default=None, show_default="generator resolution",
              help="Output size in pixels.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpeg", "webp"]), default="png",
              show_default=True, help="Image format.")
@generator_option
@bundle_option
@locality_option
@hold_references_option
@realism_option
@upscaler_option
@device_option
@threads_option
def edit(latents: tuple[Path, ...], moves: tuple[str, ...], locks: tuple[str, ...], out: Path,
         size: int | None, fmt: str, generator: str | None, bundle: str | None,
         locality: bool | None, hold_references: bool | None, realism: bool | None,
         upscaler: str | None, device: str) -> None:
    """Move latents (the JSON files `tlgan encode` or `tlgan generate` writes) along feature
    axes, holding locked ones, and render them (what POST /edit does). Each latent gets the
    same moves; one JSON line per latent on stdout: its output image, the moved and locked
    attributes' probabilities, the locks (and held references) it could not hold, whether
    the edit was local, whether the references were held and the realism check's outcome
    (``realism``: the critic's scores of the start face, the moved face and the face
    written, whether it stayed within the tolerance and whether it was corrected; null
    without a critic).

    \b
    Examples:
      tlgan edit encoded/photo.json --move Smiling=2 --lock Male --out edited/
      tlgan edit faces/seed0001.json --move Eyeglasses=3 --move Young=-1 --out edited/
      tlgan edit encoded/*.json --move Smiling=2 --out edited/
    """
    import numpy as np

    from tlgan.assembly import load_pipeline, load_upscaler_for
    from tlgan.latents import latent_to_list
    from tlgan.pipeline import plan_edit
    from tlgan.upscale.upscaler import for_size
    from tlgan_base.artifact import write_bytes_atomic, write_json_atomic
    from tlgan_base.image_codec import check_size, encode_image
    from tlgan_base.progress import progress_bar

    check_size(size)
    parsed = dict(_parse_move(m) for m in moves)
    names = [p.name.removesuffix(".json") for p in latents]
    if len(set(names)) != len(names):
        raise ValueError("latents: two latents have the same file name; their outputs would "
                         "collide")
    pipeline = load_pipeline(generator=generator, bundle=bundle, device=device,
                             encoder="none", upscaler="none")
    up = load_upscaler_for(upscaler, size, device)
    start = np.stack([_read_latent(p, pipeline.latent_size) for p in latents])
    plan = plan_edit(pipeline, start, parsed, list(locks), locality=locality,
                     hold_references=hold_references, locked_field="lock", realism=realism)
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar(total=len(latents), desc="editing", unit="latent",
                      enabled=len(latents) > 1) as bar:
        for first in range(0, len(latents), CHUNK):
            rows = slice(first, first + CHUNK)
            result = plan.part(rows).run()
            written = for_size(up, result.images, size)
            for i, name in enumerate(names[rows]):
                stem = out / name
                image = stem.with_suffix(f".{fmt}")
                write_bytes_atomic(image, encode_image(written[i], fmt, size))
                write_json_atomic(stem.with_suffix(".json"),
                                  {"latent": latent_to_list(result.latents[i])})
                assert result.probs is not None
                feats = pipeline.features_dict(result.probs[i])
                shown = {n: round(feats[n], 3) for n in [*parsed, *locks] if n in feats}
                click.echo(json.dumps({"out": str(image), "features": shown,
                                       "unheld": result.unheld[i] if result.unheld else [],
                                       "locality": result.locality,
                                       "hold_references": result.hold_references,
                                       "realism": (None if result.realism is None
                                                   else result.realism.face(i))}))
            bar.update(len(names[rows]))
