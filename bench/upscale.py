"""Does the face upscaler beat Lanczos, and what does it cost? PSNR / SSIM on held-out crops,
time per face, and a side-by-side picture of generated faces.

On the subset's partition-2 crops (identities never trained on: the upscaler trains on
partition 0 and stops on 1; the crops are 128 px), it prints per method the PSNR (dB) and
SSIM of the upscaled faces against the crops, median and mean over the crops:

- 2x, clean: the crops area-downscaled to 64 px (as the generator's training images were),
  upscaled back to 128 px by bicubic, Lanczos and the upscaler;
- 2x, degraded: the same inputs with the training degradations drawn from a fixed seed (the
  mild blur, grid, noise, JPEG and colour shifts that imitate generated faces);
- 4x: the crops downscaled to 32 px, upscaled to 128 px by bicubic, Lanczos, the upscaler
  twice (two 2x passes) and the upscaler once then Lanczos 2x.

Then the time per face (median of ``--runs`` runs of one 64 px face, Lanczos measured in the
same run as the baseline): the upscaler 64 -> 128 px against Lanczos 64 -> 128, and what a
384 px face costs (the page's display size): upscaler + Lanczos to 384 against Lanczos to
384. One torch thread (the server's default on 2 cores). Then POST /edit (the page's slider
edits) in-process: no size, 384 px with the upscaler, 384 px with Lanczos alone.

``--evidence`` also prints the statistics the degradations were chosen from: generated
faces against area-downscaled partition-1 crops (mean |Laplacian| of the luminance, the
share of spectral energy above 0.35 cycles/px and at the Nyquist frequency, the mean channel
spread (saturation)), and the same for crops with one degradation each.

The picture (``--out``, default docs/img/upscale.png): generated faces (seeds ``--seeds``,
the API's default truncation) at 256 px, in pairs: Lanczos from 64 px (left), upscaler then
Lanczos (right).

    python -m bench.upscale                          # all 1,525 test crops, picture
    python -m bench.upscale --images 256 --evidence
    python -m bench.upscale --upscaler runs/sr2x --out /tmp/upscale.png
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.common import median_time, print_table
from tlgan.training.data import decode_files, partition_names
from tlgan.training.export import image_grid, save_png
from tlgan.upscale.degrade import make_pair
from tlgan.upscale.fidelity import psnr, ssim
from tlgan.upscale.sr_weights import load_upscaler
from tlgan.upscale.upscaler import Upscaler, lanczos_upscale, to_uint8_images
from tlgan_base.celeba_layout import TEST, VAL, images_dir
from tlgan_base.devices import set_threads

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "celeba-subset"
HEADERS = ("scale", "inputs", "method", "PSNR median", "PSNR mean", "SSIM median", "SSIM mean",
           "dB vs Lanczos")


def load_crops(data: str | Path, partition: int, n: int | None, resolution: int = 128
               ) -> np.ndarray:
    """The first ``n`` (None: all) crops of ``partition`` at ``resolution`` px, uint8."""
    names, _ = partition_names(data, "the bench reads its test partition")
    chosen = names.get(partition, [])[:n]
    if not chosen:
        raise SystemExit(f"upscale: {data} has no images in partition {partition}")
    folder = images_dir(Path(data))
    crops, _ = decode_files([folder / name for name in chosen], resolution)
    return crops


def _area(images: np.ndarray, factor: int) -> np.ndarray:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return to_uint8_images(torch.nn.functional.avg_pool2d(x, factor))


def _resize(images: np.ndarray, side: int, resample: Image.Resampling) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).resize((side, side), resample))
                     for im in images])


def _row(scale: str, inputs: str, method: str, out: np.ndarray, ref: np.ndarray,
         lanczos_psnr: float | None) -> list[Any]:
    p, s = psnr(out, ref), ssim(out, ref)
    gain = "" if lanczos_psnr is None else f"{float(np.mean(p)) - lanczos_psnr:+.2f}"
    return [scale, inputs, method, f"{np.median(p):.2f}", f"{np.mean(p):.2f}",
            f"{np.median(s):.4f}", f"{np.mean(s):.4f}", gain]


def fidelity_rows(upscaler: Upscaler, crops: np.ndarray, seed: int = 0) -> list[list[Any]]:
    """The PSNR / SSIM table (rows of :data:`HEADERS`) of bicubic, Lanczos and ``upscaler``
    on ``crops`` (uint8 (N, 128, 128, 3)) at 2x (clean and degraded inputs) and 4x."""
    side = crops.shape[1]
    rows: list[list[Any]] = []
    small = _area(crops, 2)
    hr = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    lr, target = make_pair(hr, 2, np.random.default_rng([seed, 2]))
    degraded, degraded_ref = to_uint8_images(lr), to_uint8_images(target)
    for inputs, x, ref in (("64 px, clean", small, crops),
                           ("64 px, degraded", degraded, degraded_ref)):
        lanczos = lanczos_upscale(x, 2)
        base = float(np.mean(psnr(lanczos, ref)))
        rows += [_row("2x", inputs, "bicubic", _resize(x, side, Image.Resampling.BICUBIC), ref,
                      base),
                 _row("2x", inputs, "Lanczos", lanczos, ref, base),
                 _row("2x", inputs, f"upscaler {upscaler.name}", upscaler.upscale(x), ref,
                      base)]
    tiny = _area(crops, 4)
    lanczos = lanczos_upscale(tiny, 4)
    base = float(np.mean(psnr(lanczos, crops)))
    once = upscaler.upscale(tiny)
    rows += [_row("4x", "32 px, clean", "bicubic", _resize(tiny, side, Image.Resampling.BICUBIC),
                  crops, base),
             _row("4x", "32 px, clean", "Lanczos", lanczos, crops, base),
             _row("4x", "32 px, clean", "upscaler twice", upscaler.upscale(once), crops, base),
             _row("4x", "32 px, clean", "upscaler, then Lanczos 2x", lanczos_upscale(once, 2),
                  crops, base)]
    return rows


def timing_rows(upscaler: Upscaler, face: np.ndarray, runs: int) -> list[list[Any]]:
    """Time per face (ms, median of ``runs``) of one uint8 face (1, 64, 64, 3): the
    upscaler against Lanczos at 128 px and at 384 px, measured in the same run."""
    def lanczos_to(side: int) -> object:
        return _resize(face, side, Image.Resampling.LANCZOS)

    def sr_to(side: int) -> object:
        return _resize(upscaler.upscale(face), side, Image.Resampling.LANCZOS)

    rows = []
    for side in (128, 384):
        base = median_time(lambda: lanczos_to(side), repeats=runs, warmup=2)  # noqa: B023
        up = median_time(lambda: sr_to(side), repeats=runs, warmup=2)  # noqa: B023
        rows.append([f"{side} px", f"{base * 1000:.2f}", f"{up * 1000:.2f}",
                     f"{up / base:.0f}x", f"{(up - base) * 1000:.1f}"])
    return rows


def edit_timing_rows(runs: int) -> list[list[Any]]:
    """POST /edit (one move, labels on) in-process on the default models, median wall time
    of ``runs`` requests (ms): as 64 px (no size), at 384 px with the upscaler, and at 384 px
    with Lanczos alone (the upscaler off), alternated so that load changes hit all three."""
    import dataclasses

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from tlgan.assembly import load_pipeline

    pipeline = load_pipeline()
    variants = {"64 px (no size)": (pipeline, None), "384 px, upscaler": (pipeline, 384),
                "384 px, Lanczos alone": (dataclasses.replace(pipeline, upscaler=None), 384)}
    latent = [float(v) for v in pipeline.seeds_to_latents([7])[0]]
    times: dict[str, list[float]] = {name: [] for name in variants}
    clients = {name: TestClient(create_app(Settings(), pipeline=p)).__enter__()
               for name, (p, _) in variants.items()}
    for i in range(runs + 2):
        for name, (_, size) in variants.items():
            body = {"latent": latent, "moves": {"Smiling": 0.5 + 0.01 * i}, "size": size}
            t0 = time.perf_counter()
            clients[name].post("/edit", json=body).raise_for_status()
            if i >= 2:  # two warm-up rounds
                times[name].append(time.perf_counter() - t0)
    for client in clients.values():
        client.__exit__(None, None, None)
    return [[name, f"{statistics.median(t) * 1000:.1f}"] for name, t in times.items()]


def upscale_section(upscaler: Upscaler | None = None, data: str | Path = DATA,
                    images: int | None = None, runs: int = 9, seed: int = 0
                    ) -> dict[str, Any]:
    """The upscaler against Lanczos, for a bench that reports it (``bench/quality.py``):
    ``{"upscaler": describe(), "fidelity": (HEADERS, rows), "timing": (headers, rows)}``
    on the first ``images`` (None: all) partition-2 crops of ``data``. ``upscaler`` None:
    the registry's default.

    Raises:
        SystemExit: no upscaler is registered and none is given, or no test crops.
    """
    upscaler = upscaler or load_upscaler(None)
    if upscaler is None:
        raise SystemExit("upscale: no upscaler is registered; pass one (--upscaler FOLDER)")
    crops = load_crops(data, TEST, images)
    face = _area(crops[:1], 2)
    timing_headers = ("output", "Lanczos ms", "upscaler + Lanczos ms", "ratio", "added ms")
    return {"upscaler": upscaler.describe(), "images": len(crops),
            "fidelity": (HEADERS, fidelity_rows(upscaler, crops, seed)),
            "timing": (timing_headers, timing_rows(upscaler, face, runs))}


def print_section(section: dict[str, Any]) -> None:
    """Print what :func:`upscale_section` measured."""
    up = section["upscaler"]
    print(f"upscaler {up['name']} ({up['sha256'][:12]}, {up['parameters']:,} parameters); "
          f"{section['images']} partition-2 crops")
    print_table(*section["fidelity"])
    print()
    print("time per face (one 64 px face, one torch thread):")
    print_table(*section["timing"])


def side_by_side(upscaler: Upscaler, seeds: list[int], out: Path, side: int = 256) -> None:
    """Generated faces of ``seeds`` in pairs (Lanczos | upscaler then Lanczos) at ``side``
    px, four pairs a row, written to ``out``."""
    from tlgan.generators import load_generator
    from tlgan.latents import DEFAULT_TRUNCATION, sample_latents

    gen = load_generator(None)
    faces = gen.render(sample_latents(seeds, gen.latent_space, DEFAULT_TRUNCATION))
    lanczos = _resize(faces, side, Image.Resampling.LANCZOS)
    sr = _resize(upscaler.upscale(faces), side, Image.Resampling.LANCZOS)
    pairs = np.stack([x for pair in zip(lanczos, sr, strict=True) for x in pair])
    out.parent.mkdir(parents=True, exist_ok=True)
    save_png(out, image_grid(pairs, nrow=8, pad=4))
    print(f"wrote {out}: seeds {seeds[0]}..{seeds[-1]}, pairs of Lanczos | upscaler at {side} px")


def _stats(images: np.ndarray) -> dict[str, float]:
    x = images.astype(np.float32) / 255
    lum = x @ np.array([0.299, 0.587, 0.114], np.float32)
    lap = np.abs(4 * lum[:, 1:-1, 1:-1] - lum[:, :-2, 1:-1] - lum[:, 2:, 1:-1]
                 - lum[:, 1:-1, :-2] - lum[:, 1:-1, 2:]).mean()
    power = (np.abs(np.fft.fft2(lum - lum.mean((1, 2), keepdims=True))) ** 2).mean(0)
    f = np.fft.fftfreq(lum.shape[1])
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    half = lum.shape[1] // 2
    return {"|Laplacian|": float(lap),
            "HF share x1e3": float(power[radius > 0.35].sum() / power.sum() * 1e3),
            "Nyquist x1e3": float((power[half, :].sum() + power[:, half].sum())
                                  / power.sum() * 1e3),
            "saturation": float((x.max(-1) - x.min(-1)).mean())}


def evidence(data: str | Path, n: int = 256, seed: int = 0) -> None:
    """Print the statistics the degradations were chosen from (see the module docstring)."""
    from tlgan.generators import load_generator
    from tlgan.latents import sample_latents

    gen = load_generator(None)
    fake = gen.render(sample_latents(range(1000, 1000 + n), gen.latent_space))
    crops = load_crops(data, VAL, n)
    box = _area(crops, 2)
    rows: list[list[Any]] = [["generated (seeds 1000..)", *_stats(fake).values()],
                             ["crops, area-downscaled", *_stats(box).values()]]
    hr = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    from tlgan.upscale import degrade

    for name in ("blur", "grid", "noise", "jpeg", "colour"):
        only = {k: {**v, "p": 1.0 if k == name else 0.0} for k, v in
                degrade.DEGRADATIONS.items()}
        saved = degrade.DEGRADATIONS
        degrade.DEGRADATIONS = only
        try:
            lr, _ = degrade.make_pair(hr, 2, np.random.default_rng(seed))
        finally:
            degrade.DEGRADATIONS = saved
        rows.append([f"crops + {name}", *_stats(to_uint8_images(lr)).values()])
    print(f"degradation evidence ({n} faces each, 64 px):")
    print_table(["images", *_stats(box)], [[r[0], *(f"{v:.4f}" for v in r[1:])]
                                             for r in rows])
    print()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", default=str(DATA), help="CelebA-format directory")
    ap.add_argument("--upscaler", default=None, help="registered name or weights folder "
                    "(default: the registry's default)")
    ap.add_argument("--images", type=int, default=None, help="partition-2 crops (default all)")
    ap.add_argument("--runs", type=int, default=9, help="timing runs per figure")
    ap.add_argument("--seeds", default="1-8", help="seeds of the picture, a range A-B")
    ap.add_argument("--out", type=Path, default=Path("docs/img/upscale.png"))
    ap.add_argument("--evidence", action="store_true",
                    help="also print the statistics the degradations were chosen from")
    args = ap.parse_args(argv)
    set_threads(1)
    up = load_upscaler(args.upscaler)
    if up is None:
        raise SystemExit("upscale: no upscaler is registered; pass --upscaler FOLDER")
    if args.evidence:
        evidence(args.data)
    print_section(upscale_section(up, args.data, args.images, args.runs))
    print()
    print(f"POST /edit, in-process, median of {args.runs} (one torch thread):")
    print_table(("request", "ms"), edit_timing_rows(args.runs))
    lo, _, hi = args.seeds.partition("-")
    side_by_side(up, list(range(int(lo), int(hi or lo) + 1)), args.out)


if __name__ == "__main__":
    main()
