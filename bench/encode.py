"""How well, and how fast, does a photo encode? The encoder alone, then each budget of steps.

On CelebA photos of the subset's test partition (partition 2: identities never trained on,
neither by the generator, the extractor nor the encoder), for each refinement budget
(``--steps``, default 0 (the encoder alone), 25, 50, 100, 200) it prints:

- PSNR: mean pixel PSNR in dB, photo (centre-cropped, area-resized to 64 px) vs the
  reconstruction answered (uint8);
- cosine: mean cosine between the extractor's embeddings of photo and reconstruction;
- agreement: the extractor's 40 yes/no labels (P > 0.5) agreeing between photo and
  reconstruction, mean over attributes and photos; beside it the same for random pairs of
  different photos (the floor);
- the same at the default budget for 1, 2 and 4 starting points (``--starts``), with the
  10th percentile of PSNR and how many photos each gains or loses against one start;
- time per photo: the median over ``--runs`` photos encoded one at a time (as one request
  does), and its ratio to the generator's forward time for one face measured in the same
  run (the reference).

Then the edit response: for Smiling, Eyeglasses and Male, the mean P(attribute) of faces
moved -3 .. +3 along the axis, for the encoded photos (default budget) and for as many
sampled latents; their swing (P at +3 minus P at -3) and its ratio encoded / sampled.

With ``--http``, it starts ``tlgan serve`` (the shipped defaults: 1 torch thread on 2 cores)
and times POST /encode of the photo files at the default budget: p50 and p90 of the wall
time seen by the client.

A strip image (``--out``): per photo, the photo, the reconstructions at each budget, then
Smiling +2, Eyeglasses +3 and Male -/+2 of the default budget's latent.

    python -m bench.encode                             # 48 photos, all budgets, strip
    python -m bench.encode --photos 16 --steps 0,50 --runs 3 --http
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import bench_server, print_table
from tlgan.assembly import load_pipeline
from tlgan.encoders import DEFAULT_STARTS, DEFAULT_STEPS
from tlgan.pipeline import Pipeline
from tlgan_base.celeba_layout import IMAGE_DIR, PARTITION_FILE, TEST
from tlgan_base.devices import set_threads
from tlgan_base.image_codec import read_photo

REPO = Path(__file__).resolve().parents[1]
EDIT_AXES = ("Smiling", "Eyeglasses", "Male")
DISTANCES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
#: photos refined together when measuring quality
CHUNK = 16


def test_photos(data: Path, n: int) -> list[Path]:
    lines = (data / PARTITION_FILE).read_text().splitlines()
    names = [p[0] for p in (ln.split() for ln in lines) if len(p) == 2 and int(p[1]) == TEST]
    if len(names) < n:
        raise SystemExit(f"encode: only {len(names)} test photos in {data}")
    step = len(names) // n  # spread over the partition (not one identity's run)
    return [data / IMAGE_DIR / names[i * step] for i in range(n)]


def quality(pipeline: Pipeline, photos: np.ndarray, steps: int,
            starts: int = DEFAULT_STARTS) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Mean quality figures (and ``psnrs``, each photo's), the latents and the
    reconstructions of ``photos``."""
    qs, zs, ims = [], [], []
    for s in range(0, len(photos), CHUNK):
        r = pipeline.encode(photos[s:s + CHUNK], steps, starts=starts, with_features=False)
        qs += r.quality
        zs.append(r.latents)
        ims.append(r.images)
    mean: dict[str, Any] = {k: float(np.mean([q[k] for q in qs])) for k in qs[0]}
    mean["psnrs"] = np.array([q["psnr"] for q in qs])
    return mean, np.concatenate(zs), np.concatenate(ims)


def per_photo_seconds(pipeline: Pipeline, photos: np.ndarray, steps: int, runs: int) -> float:
    pipeline.encode(photos[:1], steps)  # warm-up
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        pipeline.encode(photos[i % len(photos)][None], steps)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def generator_seconds(pipeline: Pipeline, runs: int = 20) -> float:
    z = pipeline.seeds_to_latents(range(runs + 1))
    pipeline.render(z[:1])
    times = []
    for i in range(1, runs + 1):
        t0 = time.perf_counter()
        pipeline.render(z[i:i + 1])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def response(pipeline: Pipeline, z: np.ndarray, axis: str) -> list[float]:
    """Mean P(axis) of latents ``z`` moved by each of DISTANCES along it."""
    col = pipeline.attributes.index(axis)
    out = []
    for d in DISTANCES:
        moved = np.stack([pipeline.edit(zi, {axis: d}) for zi in z])
        _, probs = pipeline.render_and_label(moved)
        assert probs is not None
        out.append(float(probs[:, col].mean()))
    return out


def http_latency(photo_files: list[Path], steps: int) -> tuple[float, float, int]:
    """p50, p90 (seconds) of POST /encode against `tlgan serve` on the shipped defaults."""
    import httpx

    with bench_server("encode", "--log-level", "warning", "--encode-steps", str(steps)) as server:
        times = []
        with httpx.Client(base_url=server.url, timeout=120) as http:
            for i, path in enumerate([photo_files[0], *photo_files]):
                t0 = time.perf_counter()
                resp = http.post("/encode", files={"image": (path.name, path.read_bytes(),
                                                             "image/jpeg")},
                                 data={"adapter": "false"})  # the encoder's time alone
                took = time.perf_counter() - t0
                resp.raise_for_status()
                if i:  # the first is a warm-up
                    times.append(took)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))], len(times)


def strip(photos: np.ndarray, recs: dict[int, np.ndarray], edits: list[np.ndarray],
          out: Path, rows: int) -> None:
    from tlgan.training.export import image_grid, save_png

    cols = [photos[:rows], *(recs[s][:rows] for s in sorted(recs)), *(e[:rows] for e in edits)]
    grid = np.stack(cols, axis=1).reshape(-1, *photos.shape[1:])
    save_png(out, image_grid(grid, nrow=len(cols)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/celeba-subset")
    ap.add_argument("--photos", type=int, default=48, help="Test photos for the quality.")
    ap.add_argument("--steps", default="0,25,50,100,200", help="Budgets to measure.")
    ap.add_argument("--runs", type=int, default=5, help="Photos timed one at a time.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encoder", default=None)
    ap.add_argument("--http", action="store_true", help="Also time POST /encode (p50).")
    ap.add_argument("--starts", default="1,2,4",
                    help="Starting points to compare at the default budget ('': skip).")
    ap.add_argument("--out", type=Path, default=REPO / "runs/encode-strip.png")
    ap.add_argument("--strip-rows", type=int, default=6)
    args = ap.parse_args()
    budgets = [int(s) for s in args.steps.split(",")]
    set_threads(args.threads)
    pipeline = load_pipeline(encoder=args.encoder)
    assert pipeline.encoder is not None and pipeline.extractor is not None
    files = test_photos(args.data, args.photos)
    photos = np.stack([read_photo(p, pipeline.resolution) for p in files])
    probs = pipeline.extractor.predict(photos)
    rng = np.random.default_rng(0)
    perm = (np.arange(len(photos)) + rng.integers(1, len(photos), len(photos))) % len(photos)
    floor = float(((probs > 0.5) == (probs[perm] > 0.5)).mean())
    g_s = generator_seconds(pipeline)
    print(f"encoder {pipeline.encoder.name}, {len(photos)} test photos, {args.threads} torch "
          f"threads; generator forward, one face: {g_s * 1000:.2f} ms")
    rows, recs, latents = [], {}, {}
    for steps in budgets:
        t0 = time.perf_counter()
        q, z, ims = quality(pipeline, photos, steps)
        took = time.perf_counter() - t0
        recs[steps], latents[steps] = ims, z
        s = per_photo_seconds(pipeline, photos, steps, args.runs)
        rows.append([steps, f"{q['psnr']:.2f}", f"{q['embedding_cosine']:.3f}",
                     f"{q['label_agreement']:.3f}", f"{floor:.3f}", f"{s * 1000:.0f}",
                     f"{s / g_s:.0f}x"])
        print(f"  steps {steps}: done in {took:.0f} s", file=sys.stderr)
    print_table(["steps", "PSNR dB", "cosine", "agreement", "random pairs", "ms/photo",
                 "/ G fwd"], rows)
    if args.starts:
        print(f"\nstarting points at steps {DEFAULT_STEPS} (the best kept after a quarter of "
              "the steps):")
        srows = []
        one: np.ndarray | None = None  # each photo's PSNR from one start
        for k in (int(v) for v in args.starts.split(",")):
            q, _, _ = quality(pipeline, photos, DEFAULT_STEPS, starts=k)
            t = []
            for i in range(args.runs):
                t0 = time.perf_counter()
                pipeline.encode(photos[i][None], DEFAULT_STEPS, starts=k)
                t.append(time.perf_counter() - t0)
            psnrs = q["psnrs"]
            one = psnrs if k == 1 else one
            gain = psnrs - one if one is not None and k != 1 else None
            srows.append([k, f"{q['psnr']:.2f}", f"{np.percentile(psnrs, 10):.2f}",
                          f"{q['embedding_cosine']:.3f}", f"{q['label_agreement']:.3f}",
                          f"{statistics.median(t) * 1000:.0f}",
                          "-" if gain is None else f"{int((gain > 0.3).sum())} / "
                                                   f"{int((gain < -0.3).sum())}"])
        print_table(["starts", "PSNR dB", "p10 dB", "cosine", "agreement", "ms/photo",
                     "photos >0.3 dB better / worse than 1 start"], srows)
    default = DEFAULT_STEPS if DEFAULT_STEPS in latents else budgets[-1]
    z_enc = latents[default]
    z_smp = pipeline.seeds_to_latents(range(10_000, 10_000 + len(z_enc)))
    print(f"\nedit response (mean P after a move, {len(z_enc)} faces; encoded at steps "
          f"{default}):")
    resp_rows = []
    for axis in EDIT_AXES:
        enc = response(pipeline, z_enc, axis)
        smp = response(pipeline, z_smp, axis)
        swing_e, swing_s = enc[-1] - enc[0], smp[-1] - smp[0]
        resp_rows.append([axis, " ".join(f"{p:.2f}" for p in enc),
                          " ".join(f"{p:.2f}" for p in smp), f"{swing_e:.2f}",
                          f"{swing_s:.2f}", f"{swing_e / swing_s:.2f}"])
    print_table(["axis", f"encoded, d = {DISTANCES[0]:g}..{DISTANCES[-1]:g}", "sampled",
                 "swing enc", "swing smp", "ratio"], resp_rows)
    edits = []
    for axis, d in (("Smiling", 2.0), ("Eyeglasses", 3.0), ("Male", -2.0), ("Male", 2.0)):
        moved = np.stack([pipeline.edit(zi, {axis: d}) for zi in z_enc[:args.strip_rows]])
        edits.append(pipeline.render(moved))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    strip(photos, recs, edits, args.out, args.strip_rows)
    print(f"\nstrip: {args.out} (photo | steps {', '.join(map(str, sorted(recs)))} | "
          "Smiling +2, Eyeglasses +3, Male -2, Male +2)")
    if args.http:
        p50, p90, n = http_latency(files[:max(args.runs, 10)], DEFAULT_STEPS)
        print(f"\nPOST /encode at steps {DEFAULT_STEPS} (tlgan serve, shipped defaults), "
              f"{n} photos: p50 {p50:.2f} s, p90 {p90:.2f} s")


if __name__ == "__main__":
    main()
