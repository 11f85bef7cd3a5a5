"""Photos in the wild, composed from the CelebA subset's test crops: are the faces found, and
how well are they aligned?

Each photo (``--width`` x ``--height``) has a background (a blurred, enlarged corner of
another crop, or smooth noise) and 1-3 aligned test crops (partition 2) pasted at a random scale
(face side ``--min-face``..``--max-face`` px), rotation (up to ``--max-angle`` degrees) and
place, under a soft round mask, so the placement of each crop is known. For each photo the
detector's faces are matched to the pasted ones (nearest box centre, within half a face);
the alignment error is the distance, in pixels of the 64 px aligned face, between where the
found alignment and the known placement put the template's eyes. Times per stage are
medians of ``--repeats`` runs of each photo.

    python bench/photos.py --celeba ../shared/data/celeba-subset --photos 60 --seed 0
    python bench/photos.py --photos 60 --seed 0 --detector dlib-hog   # a candidate (own venv)
    python bench/photos.py --photos 40 --repeats 2 --work-side 800   # another search copy size
    python bench/photos.py --template 200    # the eye template's provenance (CELEBA_EYES)
    python bench/photos.py --adapter 24      # photo adapters: fidelity, editability, time
    python bench/photos.py --compose 12      # composing edits back: round trip, transfer, time
    python bench/photos.py --http 5          # POST /photo/edit on the real server, 12 MP photo

Candidates (``--detector``): ``opencv`` (the product's, tlgan.photos.faces.HaarFaceDetector:
a scout pass, then the full sweep around its candidates), ``opencv-sweep`` (the same
cascades swept over the whole search copy at every angle, as before the scout),
``mediapipe`` (mediapipe 0.10.21's bundled BlazeFace short-range model, 6 keypoints; needs
numpy<2, so its own venv), ``dlib-hog`` (dlib-bin's HOG detector; no landmark model ships,
so eyes are placed from the box).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path[0] = str(Path(__file__).resolve().parents[1])

from tlgan.photos.faces import (  # noqa: E402
    CELEBA_EYES,
    WORK_SIDE,
    Detection,
    FaceDetector,
    HaarFaceDetector,
    apply_affine,
    find_faces,
    invert_affine,
    warp_face,
)

ALIGNED = 64


def _test_crops(celeba: Path) -> list[Path]:
    lines = (celeba / "list_eval_partition.txt").read_text().split("\n")
    names = [ln.split()[0] for ln in lines if ln.strip() and ln.split()[1] == "2"]
    return [celeba / "img_align_celeba" / n for n in names]


def compose(rng: np.random.Generator, crops: list[Path], width: int, height: int,
            min_face: int, max_face: int, max_angle: float
            ) -> tuple[np.ndarray, list[np.ndarray]]:
    """A photo and, per pasted face, the transform (2, 3) photo -> its 128 px crop."""
    import cv2
    from PIL import Image

    def load(p: Path) -> np.ndarray:
        return np.asarray(Image.open(p).convert("RGB"), dtype=np.uint8)

    if rng.random() < 0.5:  # another crop's texture: a corner (hair, backdrop), enlarged
        x0, y0 = (int(v) for v in rng.integers(0, 88, 2))
        patch = load(crops[rng.integers(len(crops))])[y0:y0 + 40, x0:x0 + 40]
        bg = cv2.GaussianBlur(cv2.resize(patch, (width, height)), (0, 0), 4)
    else:
        small = rng.integers(0, 255, (max(2, height // 40), max(2, width // 40), 3), np.uint8)
        bg = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        bg = np.clip(bg + rng.normal(0, 8, bg.shape), 0, 255).astype(np.uint8)
    photo = bg.astype(np.float32)
    placements: list[np.ndarray] = []
    centres: list[np.ndarray] = []
    for _ in range(int(rng.integers(1, 4))):
        side = float(rng.uniform(min_face, max_face))
        for _try in range(20):
            c = rng.uniform([side * 0.6, side * 0.6], [width - side * 0.6, height - side * 0.6])
            if all(np.linalg.norm(c - o) > 0.8 * (side + s) for o, s in centres):
                break
        else:
            continue
        angle = float(rng.uniform(-max_angle, max_angle))
        k = side / 128
        to_photo = cv2.getRotationMatrix2D((64.0, 64.0), angle, k)
        to_photo[:, 2] += c - 64.0
        crop = load(crops[rng.integers(len(crops))])
        warped = cv2.warpAffine(crop, to_photo, (width, height), flags=cv2.INTER_AREA
                                if k < 1 else cv2.INTER_LINEAR).astype(np.float32)
        yy, xx = np.mgrid[:128, :128]
        mask = np.clip((62 - np.hypot(xx - 63.5, yy - 63.5)) / 6, 0, 1).astype(np.float32)
        m = cv2.warpAffine(mask, to_photo, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        photo = photo * (1 - m) + warped * m
        placements.append(invert_affine(to_photo))
        centres.append((c, side))
    return np.clip(photo + 0.5, 0, 255).astype(np.uint8), placements


class _MediaPipe:
    def __init__(self) -> None:
        import mediapipe as mp  # type: ignore[import-not-found]

        self.fd = mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                            min_detection_confidence=0.5)

    def detect(self, photo: np.ndarray) -> list[Detection]:
        h, w = photo.shape[:2]
        res = self.fd.process(photo)
        out = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            kp = d.location_data.relative_keypoints
            # keypoint 0 is the subject's right eye: image-left
            eyes = np.array([[kp[0].x * w, kp[0].y * h], [kp[1].x * w, kp[1].y * h]])
            box = (b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h)
            out.append(Detection(box=box, score=float(d.score[0]), eyes=eyes))
        return out


class _DlibHog:
    def __init__(self) -> None:
        import dlib  # type: ignore[import-not-found]

        self.det = dlib.get_frontal_face_detector()

    def detect(self, photo: np.ndarray) -> list[Detection]:
        rects, scores, _ = self.det.run(photo, 1, 0.0)
        out = []
        for r, s in zip(rects, scores, strict=True):
            bw = r.right() - r.left()
            eyes = np.array([[r.left(), r.top()]]) + HaarFaceDetector.EYES_IN_BOX * bw
            out.append(Detection(box=(r.left(), r.top(), r.right(), r.bottom()), score=s,
                                 eyes=eyes, eyes_found=0))
        return out


def measure_template(celeba: Path, n: int) -> None:
    """Print the mean eye centres (fractions of the side) that HaarFaceDetector finds on the
    first ``n`` crops of partition 0 (where it finds both eyes): CELEBA_EYES's provenance."""
    from PIL import Image

    lines = (celeba / "list_eval_partition.txt").read_text().split("\n")
    names = [ln.split()[0] for ln in lines if ln.strip() and ln.split()[1] == "0"][:n]
    det = HaarFaceDetector()
    eyes, in_box, found = [], [], 0
    for name in names:
        crop = np.asarray(Image.open(celeba / "img_align_celeba" / name).convert("RGB"))
        got = det.detect(crop)
        if not got:
            continue
        found += 1
        best = max(got, key=lambda d: d.box[2] - d.box[0])
        if best.eyes_found == 2:
            side = crop.shape[1]
            eyes.append(best.eyes / side)
            in_box.append((best.eyes - np.array(best.box[:2])) / (best.box[2] - best.box[0]))
    e, b = np.mean(eyes, 0), np.mean(in_box, 0)
    print(f"{len(names)} crops of partition 0: a face found in {found}, both eyes in "
          f"{len(eyes)}")
    print(f"CELEBA_EYES = {np.round(e, 4).tolist()}  (std {np.round(np.std(eyes, 0), 4).tolist()})")
    print(f"EYES_IN_BOX = {np.round(b, 3).tolist()}")


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _scores(pipe: Any, photos: np.ndarray, renders: np.ndarray) -> list[tuple[float, ...]]:
    """Per face: PSNR at 64 px, embedding cosine, label agreement (render vs photo)."""
    import torch

    def t(a: np.ndarray) -> Any:
        return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255

    x, y = t(photos), t(renders)
    with torch.inference_mode():
        pp, pe = pipe.extractor.forward_tensor(x)
        rp, re = pipe.extractor.forward_tensor(y)
        cos = torch.nn.functional.cosine_similarity(pe, re, dim=1)
        agree = ((pp > 0.5) == (rp > 0.5)).float().mean(1)
    mse = ((x - y) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return [(float(-10 * torch.log10(m)), float(c), float(a))
            for m, c, a in zip(mse, cos, agree, strict=True)]


def _edit_moves(pipe: Any, z: np.ndarray, adapter: Any, axes: tuple[str, ...],
                dist: float) -> list[float]:
    """Per axis: the extractor's logit of that attribute at +dist minus at -dist."""
    import torch

    from tlgan.photos.adapter import render_adapted

    out = []
    for a in axes:
        zz = np.stack([pipe.edit(z, {a: -dist}), pipe.edit(z, {a: dist})])
        with torch.inference_mode():
            probs, _ = pipe.extractor.forward_tensor(render_adapted(pipe.generator, zz, adapter))
        col = pipe.extractor.attributes.index(a)
        lg = _logit(probs[:, col].numpy())
        out.append(float(lg[1] - lg[0]))
    return out


ADAPTER_CHOICES = (
    "bn, no regularizer",
    "last, no regularizer",
    "bn+last, no regularizer",
    "bn+last, 75 steps, no regularizer",
    "bn+last, 2 near at 3, weight 1",
    "bn+last, 2 near at 3, weight 0.1",
    "bn, 2 near at 3, weight 0.1",
    "bn+last, 1 near at 3, weight 0.1",
    "bn+last, 100 steps, 2 near at 3, weight 0.1",
    "bn+last, 100 steps, 1 near at 3, weight 0.1",
    "bn+last, 60 steps, lr 0.02, 1 near at 3, weight 0.1",
    "bn+last, 100 steps, lr 0.015, 1 near at 3, weight 0.1",
    "bn+last, 100 steps, lr 0.02, 1 near at 3, weight 0.1",
    "bn+last, 120 steps, lr 0.015, 1 near at 3, weight 0.1",
    "bn+last, 2 near at 3, weight 0.1, perceptual 0.01",
    "bn+last, 2 near at 3, weight 0.1, perceptual 0.05",
)


#: what a row of the adapter table does not say (the tuning the first rows were measured with)
ROW_BASE: dict[str, Any] = {"steps": 150, "lr": 0.01, "schedule": "constant", "lr_last": 1.0,
                            "near_weight": 0.1, "near_every": 1, "first_every": 1,
                            "perceptual": 0.0, "terms_last": 0}


def adapter_choice(text: str) -> dict[str, Any]:
    """A row of the adapter table, ``"PARTS, phrase, phrase, ..."``, as TuneSettings
    arguments. Phrases: ``N steps``, ``lr X``, ``last lr xM`` (the last convolution's rate
    over lr), ``cosine`` (the schedule), ``N near at R``, ``weight W``, ``near every K``,
    ``first every K``, ``no regularizer``, ``along axes`` (nearby latents along random
    combinations of the bundle's axes), ``perceptual P``, ``perceptual every K`` (the
    extractor's embedding term every K-th step), ``encoder W``, ``encoder every K`` (the
    photo encoder's feature term, its weight and every how many steps), ``terms in last N``
    (either term only in the last N steps). What a row does not say is
    :data:`ROW_BASE` (the tuning of the first rows, so that a row means the same whatever the
    library's defaults), but for the regularizer, which a row must name (``N near at R`` or
    ``no regularizer``): ``"bn2+last, 100 steps, lr 0.02, cosine, 1 near at 3, weight 0.1"``.
    ``"default"``: the library's defaults (TuneSettings())."""
    from tlgan.photos.adapter import PARTS

    if text.strip() == "default":
        return {}
    head, *rest = [w.strip() for w in text.split(",")]
    if head not in PARTS:
        raise SystemExit(f"--choices: {text!r} does not start with one of {', '.join(PARTS)}")
    out: dict[str, Any] = {**ROW_BASE, "parts": head}
    patterns: list[tuple[str, Any]] = [
        (r"(\d+) steps", lambda m: {"steps": int(m[1])}),
        (r"lr ([\d.e-]+)", lambda m: {"lr": float(m[1])}),
        (r"last lr x([\d.e-]+)", lambda m: {"lr_last": float(m[1])}),
        (r"cosine", lambda m: {"schedule": "cosine"}),
        (r"(\d+) near at ([\d.]+)", lambda m: {"near": int(m[1]), "radius": float(m[2])}),
        (r"weight ([\d.e-]+)", lambda m: {"near_weight": float(m[1])}),
        (r"near every (\d+)", lambda m: {"near_every": int(m[1])}),
        (r"first every (\d+)", lambda m: {"first_every": int(m[1])}),
        (r"no regularizer", lambda m: {"near": 0}),
        (r"along axes", lambda m: {"along_axes": True}),
        (r"perceptual ([\d.e-]+)", lambda m: {"perceptual": float(m[1])}),
        (r"perceptual every (\d+)", lambda m: {"perceptual_every": int(m[1])}),
        (r"encoder ([\d.e-]+)", lambda m: {"encoder_weight": float(m[1])}),
        (r"encoder every (\d+)", lambda m: {"encoder_every": int(m[1])}),
        (r"terms in last (\d+)", lambda m: {"terms_last": int(m[1])}),
    ]
    for phrase in rest:
        for pat, fn in patterns:
            if m := re.fullmatch(pat, phrase):
                out.update(fn(m))
                break
        else:
            raise SystemExit(f"--choices: {phrase!r} in {text!r} is not a known phrase")
    if not any(re.fullmatch(r"\d+ near at [\d.]+|no regularizer", p) for p in rest):
        raise SystemExit(f"--choices: {text!r} names no regularizer ('N near at R' or 'no "
                         "regularizer')")
    return out


def bench_adapter_times(celeba: Path, n: int, choices: list[str], repeats: int) -> None:
    """Tuning time per choice, the choices taken in turn (round robin over ``n`` test crops
    and ``repeats`` rounds), so that other work on the machine slows them alike."""
    from tlgan.assembly import load_pipeline
    from tlgan.photos.adapter import TuneSettings, tune_adapter
    from tlgan_base.image_codec import read_photo

    pipe = load_pipeline(device="cpu")
    g = pipe.generator
    photos = np.stack([read_photo(p, g.resolution) for p in _test_crops(celeba)[:n]])
    z = pipe.encode(photos, 0, with_features=False).latents
    times: dict[str, list[float]] = {c: [] for c in choices}
    for _ in range(repeats):
        for i in range(n):
            for c in choices:
                t0 = time.perf_counter()
                tune_adapter(g, z[i], photos[i], TuneSettings(**adapter_choice(c)),
                             extractor=pipe.extractor, directions=pipe.bundle.directions,
                             encoder_features=pipe.encoder.features)
                times[c].append(time.perf_counter() - t0)
    print(f"tuning time per photo, median of {n} crops x {repeats} rounds, choices in turn:")
    for c, v in times.items():
        print(f"  {c}: {statistics.median(v):.2f} s")


def bench_adapter(celeba: Path, n: int, steps: int, choices: list[str], dist: float,
                  encode_times: bool = True) -> None:
    """The adapter table: fidelity, editability, time and size per tuning choice, on the
    first ``n`` crops of the test partition encoded with ``steps`` refinement steps (and,
    with ``encode_times``, the encoder's time per photo at 0, 10 and 25 steps)."""
    import torch

    from tlgan.assembly import load_pipeline
    from tlgan.generators.base import to_uint8
    from tlgan.photos.adapter import (
        TuneSettings,
        adapter_size,
        encode_adapter,
        render_adapted,
        tune_adapter,
    )
    from tlgan_base.image_codec import read_photo

    pipe = load_pipeline(device="cpu")
    g = pipe.generator
    photos = np.stack([read_photo(p, g.resolution) for p in _test_crops(celeba)[:n]])
    t_enc: dict[int, list[float]] = {k: [] for k in ((0, 10, 25) if encode_times else ())}
    for k in t_enc:
        for i in range(min(n, 6)):
            t0 = time.perf_counter()
            pipe.encode(photos[i:i + 1], k, with_features=False)
            t_enc[k].append(time.perf_counter() - t0)
    if t_enc:
        print(f"encode per photo (median of {min(n, 6)}): " + ", ".join(
            f"{k} steps {statistics.median(v):.2f} s" for k, v in t_enc.items()))
    z = pipe.encode(photos, steps, with_features=False).latents
    axes = ("Smiling", "Male")
    base_moves = [_edit_moves(pipe, z[i], None, axes, dist) for i in range(n)]
    untuned = to_uint8(render_adapted(g, z, None))
    from bench.judge import judge
    judged = judge(photos)
    rows = [(f"none (encoder + {steps} steps)", _scores(pipe, photos, untuned), 1.0, 1.0, 0.0,
             0, 0, _judged(judge, judged, untuned))]
    flips = [(rows[0][0], _flips(pipe, photos, untuned))]
    for name in choices:
        s = TuneSettings(**adapter_choice(name))
        renders, ratios, times = [], [], []
        for i in range(n):
            t0 = time.perf_counter()
            a = tune_adapter(g, z[i], photos[i], s, extractor=pipe.extractor,
                             directions=pipe.bundle.directions,
                             encoder_features=pipe.encoder.features)
            times.append(time.perf_counter() - t0)
            renders.append(to_uint8(render_adapted(g, z[i:i + 1], a))[0])
            ratios.append(np.array(_edit_moves(pipe, z[i], a, axes, dist))
                          / np.array(base_moves[i]))
            print(f"\r{name}: {i + 1}/{n}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        r = np.median(np.array(ratios), axis=0)
        rows.append((name, _scores(pipe, photos, np.stack(renders)), float(r[0]), float(r[1]),
                     statistics.median(times), adapter_size(g, s.parts),
                     len(encode_adapter(a)), _judged(judge, judged, np.stack(renders))))
        print(_adapter_row(*rows[-1]), file=sys.stderr, flush=True)
        flips.append((name, _flips(pipe, photos, np.stack(renders))))
    print(f"{n} test crops (partition 2), encoder + {steps} refinement steps; edit moves: "
          f"extractor logit at +{dist:g} minus at -{dist:g} along the axis, with the adapter "
          f"over without (median per photo). Base moves (median): " + ", ".join(
              f"{a} {statistics.median(m[j] for m in base_moves):.2f}"
              for j, a in enumerate(axes)))
    print("judge (bench/judge.py, independent of the extractor): P(male) of render vs photo, "
          "agreement at 0.5 and mean |dP|; median |age difference| (years)")
    print("| tuned | PSNR@64 (dB) | embedding cosine | label agreement | Smiling move | "
          "Male move | tuning time | numbers | adapter string | judge male agreement | "
          "judge mean abs dP(male) | judge median abs age diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(_adapter_row(*row))
    print(f"(threads {torch.get_num_threads()})")
    print("labels that differ between photo and render (count over the crops; the photo's "
          "median probability of those):")
    for name, fl in flips:
        print(f"  {name}: " + ", ".join(f"{k} {len(v)} (p {np.median(v):.2f})" for k, v in
                                      sorted(fl.items(), key=lambda kv: -len(kv[1]))[:8]))


def _judged(judge: Any, photos: dict[str, np.ndarray], renders: np.ndarray
            ) -> tuple[float, float, float]:
    """The independent judge on photo vs render: P(male) agreement at 0.5, mean |dP(male)|,
    median |age difference| in years."""
    r = judge(renders)
    pm, rm = photos["p_male"], r["p_male"]
    return (float(np.mean((pm > 0.5) == (rm > 0.5))), float(np.mean(np.abs(pm - rm))),
            float(np.median(np.abs(photos["age"] - r["age"]))))


def _adapter_row(name: str, sc: list[tuple[float, ...]], rs: float, rm: float, tt: float,
                 size: int, enc: int, jd: tuple[float, float, float]) -> str:
    m = np.mean(np.array(sc), axis=0)
    return (f"| {name} | {m[0]:.2f} | {m[1]:.3f} | {m[2]:.3f} | {rs:.2f} | {rm:.2f} | "
            f"{tt:.2f} s | {size:,} | {enc:,} chars | {jd[0]:.3f} | {jd[1]:.3f} | "
            f"{jd[2]:.1f} |")


def _flips(pipe: Any, photos: np.ndarray, renders: np.ndarray) -> dict[str, list[float]]:
    """Per label that differs (p > 0.5) between a photo and its render somewhere: the
    photo's probabilities where it does."""
    import torch

    def t(a: np.ndarray) -> Any:
        return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255

    with torch.inference_mode():
        pp = pipe.extractor.forward_tensor(t(photos))[0].numpy()
        rp = pipe.extractor.forward_tensor(t(renders))[0].numpy()
    out: dict[str, list[float]] = {}
    for i, j in zip(*np.nonzero((pp > 0.5) != (rp > 0.5)), strict=True):
        out.setdefault(pipe.extractor.attributes[j], []).append(float(pp[i, j]))
    return out


def bench_compose(celeba: Path, n: int, seed: int, dist: float) -> None:
    """Composition choices on composed photos: round trip with no move, how much of the
    render's edit the composed photo keeps (re-aligned, extractor logit), time; then the
    whole edit of a 12-megapixel photo, stage by stage."""
    import io

    import torch
    from PIL import Image

    from tlgan.assembly import load_pipeline
    from tlgan.generators.base import to_uint8
    from tlgan.photos.adapter import render_adapted, tune_adapter
    from tlgan.photos.compose import compose_edit
    from tlgan.photos.photo_edit import edit_photo

    pipe = load_pipeline(device="cpu")
    g, ext = pipe.generator, pipe.extractor
    assert ext is not None
    det = HaarFaceDetector()
    rng = np.random.default_rng(seed)
    crops = _test_crops(celeba)
    col = ext.attributes.index("Smiling")
    choices = [("difference", 0.12), ("difference", 0.04), ("difference", 0.25),
               ("paste", 0.12), ("roundtrip", 0.12)]
    res: dict[tuple[str, float], list[tuple[float, float, float, float]]] = {
        c: [] for c in choices}

    def smile(img: np.ndarray) -> float:
        with torch.inference_mode():
            p, _ = ext.forward_tensor(torch.from_numpy(img[None]).permute(0, 3, 1, 2)
                                      .float() / 255)
        return float(_logit(p[0, col].numpy()))

    done = 0
    while done < n:
        photo, _ = compose(rng, crops, 1024, 768, 160, 320, 30.0)
        faces = find_faces(photo, det, ALIGNED)
        if not faces:
            continue
        f = faces[0]
        aligned = warp_face(photo, f.matrix, ALIGNED)
        z = pipe.encode(aligned[None], 10, with_features=False).latents[0]
        a = tune_adapter(g, z, aligned, extractor=pipe.extractor)
        pair = to_uint8(render_adapted(g, np.stack([z, pipe.edit(z, {"Smiling": dist})]), a))
        want = smile(pair[1]) - smile(pair[0])
        for c in choices:
            t0 = time.perf_counter()
            out = compose_edit(photo, f.matrix, pair[0], pair[1], method=c[0], feather=c[1])
            dt = time.perf_counter() - t0
            same = compose_edit(photo, f.matrix, pair[0], pair[0], method=c[0], feather=c[1])
            err = float(np.abs(same.astype(int) - photo.astype(int)).max())
            got = smile(warp_face(out, f.matrix, ALIGNED)) - smile(aligned)
            res[c].append((err, got / want if abs(want) > 1e-6 else np.nan, dt,
                           float((out != photo).any(axis=2).mean())))
        done += 1
        print(f"\rcompose: {done}/{n}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"{n} composed photos 1024x768 (faces 160-320 px); edit Smiling +{dist:g}")
    print("| composition | feather | no-move round trip: max error (gray levels) | edit kept "
          "(re-aligned logit move / render's) | share of photo changed | time |")
    print("|---|---|---|---|---|---|")
    for c, v in res.items():
        arr = np.array(v)
        print(f"| {c[0]} | {c[1]:g} | {arr[:, 0].max():.0f} | {np.nanmedian(arr[:, 1]):.2f} | "
              f"{np.median(arr[:, 3]):.3f} | {1000 * np.median(arr[:, 2]):.1f} ms |")
    # a 12-megapixel photo, one large face, JPEG: the whole edit, stage by stage
    big, _ = compose(np.random.default_rng(seed + 1), crops, 4000, 3000, 900, 1400, 20.0)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "JPEG", quality=92)
    data = buf.getvalue()

    def enc(x: np.ndarray) -> np.ndarray:
        return np.asarray(pipe.encode(x[None], 10, with_features=False).latents[0])

    def move(zz: np.ndarray) -> np.ndarray:
        return np.asarray(pipe.edit(zz, {"Smiling": dist}))

    first, later, again = [], [], []
    for _ in range(3):
        t0 = time.perf_counter()
        e = edit_photo(data, detector=det, generator=g, encode_fn=enc, moves_fn=move,
                       extractor=pipe.extractor)
        first.append((time.perf_counter() - t0, e.timings))
        assert e.faces
        eyes = e.faces[e.face].eyes
        t0 = time.perf_counter()
        e2 = edit_photo(data, detector=det, generator=g, encode_fn=enc, moves_fn=move,
                        latent=e.latent, adapter=e.adapter)
        later.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        e3 = edit_photo(data, detector=det, generator=g, encode_fn=enc, moves_fn=move,
                        latent=e.latent, adapter=e.adapter, eyes=eyes)
        again.append(time.perf_counter() - t0)
        assert np.array_equal(e2.image, e.image) and np.array_equal(e3.image, e.image)
    stages = {k: statistics.median(t[1][k] for t in first) for k in first[0][1]}
    print("12-megapixel JPEG (4000x3000), encoder + 10 steps, default adapter: first edit "
          f"{statistics.median(t[0] for t in first):.2f} s (" + ", ".join(
              f"{k} {v:.2f}" for k, v in stages.items()) + "); later edit with latent + "
          f"adapter {statistics.median(later):.2f} s; with the eyes too "
          f"{statistics.median(again):.2f} s (median of 3; the same photo each way)")


def bench_http(celeba: Path, runs: int, seed: int, dist: float, parallel: int = 1) -> None:
    """POST /photo/edit on the real server (shipped models, `tlgan serve` defaults) with a
    12-megapixel JPEG (4000x3000, one large face): the first edit (finding, encoding, tuning,
    moving, composing), a later edit sending the answer's latent, adapter and eyes with the
    full photo, and the same with a 1280x960 copy (what the page sends while a slider moves);
    medians of ``runs`` requests each, and the server's seconds per stage of the first.
    ``parallel`` > 1: instead, ``runs`` rounds of that many first edits sent at once."""
    import io

    from PIL import Image

    from bench.common import bench_server

    crops = _test_crops(celeba)
    big, _ = compose(np.random.default_rng(seed + 1), crops, 4000, 3000, 900, 1400, 20.0)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "JPEG", quality=92)
    data = buf.getvalue()
    small = io.BytesIO()
    Image.fromarray(big).resize((1280, 960), Image.LANCZOS).save(small, "JPEG", quality=90)
    moves = {"Smiling": dist}
    first, later, slider, stages = [], [], [], []
    with bench_server("bench/photos.py --http") as server, server.client(timeout=120.0) as api:
        api.edit_photo(data, moves)  # warm-up: the first request after start is not timed
        if parallel > 1:
            _http_parallel(server, data, dist, runs, parallel)
            return
        for i in range(runs):
            t0 = time.perf_counter()
            e = api.edit_photo(data, {"Smiling": dist + 0.01 * i})
            first.append(time.perf_counter() - t0)
            stages.append(e.timings)
            t0 = time.perf_counter()
            api.edit_photo(data, moves, latent=e.latent, adapter=e.adapter, eyes=e.eyes)
            later.append(time.perf_counter() - t0)
            k = 1280 / 4000
            t0 = time.perf_counter()
            api.edit_photo(small.getvalue(), moves, latent=e.latent, adapter=e.adapter,
                           eyes=[[x * k, y * k] for x, y in e.eyes])
            slider.append(time.perf_counter() - t0)
    med = {key: statistics.median(t.get(key, 0.0) for t in stages) for key in stages[0]}
    print(f"POST /photo/edit, 12 MP JPEG ({len(data) / 1e6:.1f} MB), Smiling +{dist:g}, "
          f"median of {runs}: first edit {statistics.median(first):.2f} s (server stages: "
          + ", ".join(f"{key} {v:.2f}" for key, v in med.items()) + "); later edit with "
          f"latent + adapter + eyes {statistics.median(later):.2f} s; the same on a 1280x960 "
          f"copy {statistics.median(slider):.2f} s")


def _http_parallel(server: Any, data: bytes, dist: float, runs: int, parallel: int) -> None:
    """``runs`` rounds of ``parallel`` first edits of ``data`` sent at once (a client each):
    the median request's time and the server's stages."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> tuple[float, dict[str, float]]:
        with server.client(timeout=300.0) as api:
            t0 = time.perf_counter()
            e = api.edit_photo(data, {"Smiling": dist + 0.01 * i})
            return time.perf_counter() - t0, e.timings

    done: list[tuple[float, dict[str, float]]] = []
    with ThreadPoolExecutor(parallel) as pool:
        for r in range(runs):
            done += pool.map(one, range(r * parallel, (r + 1) * parallel))
    med = {key: statistics.median(t[1].get(key, 0.0) for t in done) for key in done[0][1]}
    print(f"POST /photo/edit, 12 MP JPEG, {parallel} first edits at once, {runs} rounds: "
          f"median request {statistics.median(t[0] for t in done):.2f} s (server stages: "
          + ", ".join(f"{key} {v:.2f}" for key, v in med.items()) + ")")


def make_detector(name: str, work_side: int = WORK_SIDE) -> FaceDetector:
    if name == "opencv":
        return HaarFaceDetector(work_side=work_side)
    if name == "opencv-sweep":
        return HaarFaceDetector(work_side=work_side, scout=None)
    if name == "mediapipe":
        return _MediaPipe()
    if name == "dlib-hog":
        return _DlibHog()
    raise SystemExit(f"--detector: one of opencv, opencv-sweep, mediapipe, dlib-hog, got "
                     f"{name!r}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--celeba", type=Path, default=Path(os.environ.get(
        "TLGAN_CELEBA_DIR", Path(__file__).resolve().parents[2] / "shared/data/celeba-subset")))
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--height", type=int, default=768)
    ap.add_argument("--min-face", type=int, default=80)
    ap.add_argument("--max-face", type=int, default=320)
    ap.add_argument("--max-angle", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detector", default="opencv")
    ap.add_argument("--work-side", type=int, default=WORK_SIDE,
                    help="opencv: the longer side the photo is reduced to for the search")
    ap.add_argument("--template", type=int, default=0, metavar="N",
                    help="instead: measure the eye template on N crops of partition 0")
    ap.add_argument("--adapter", type=int, default=0, metavar="N",
                    help="instead: the photo-adapter table on N test crops")
    ap.add_argument("--adapter-steps", type=int, default=25,
                    help="refinement steps before tuning (--adapter)")
    ap.add_argument("--choices", default=";".join(ADAPTER_CHOICES),
                    help="semicolon-separated rows of the adapter table (--adapter)")
    ap.add_argument("--adapter-times", type=int, default=0, metavar="N",
                    help="instead: tuning time per choice on N test crops, in turn")
    ap.add_argument("--no-encode-times", action="store_true",
                    help="skip timing the encoder (--adapter)")
    ap.add_argument("--compose", type=int, default=0, metavar="N",
                    help="instead: composition choices on N composed photos, and a 12 MP edit")
    ap.add_argument("--distance", type=float, default=2.0, help="edit distance (z units)")
    ap.add_argument("--http", type=int, default=0, metavar="RUNS",
                    help="instead: POST /photo/edit on the real server with a 12 MP photo")
    ap.add_argument("--http-parallel", type=int, default=1, metavar="K",
                    help="--http: instead, RUNS rounds of K first edits sent at once")
    args = ap.parse_args(argv)
    if not (args.celeba / "list_eval_partition.txt").is_file():
        raise SystemExit(f"--celeba: no CelebA subset at {args.celeba}")
    if args.template:
        measure_template(args.celeba, args.template)
        return
    if args.adapter:
        bench_adapter(args.celeba, args.adapter, args.adapter_steps,
                      [c for c in args.choices.split(";") if c], args.distance,
                      not args.no_encode_times)
        return
    if args.adapter_times:
        bench_adapter_times(args.celeba, args.adapter_times,
                            [c for c in args.choices.split(";") if c], args.repeats)
        return
    if args.compose:
        bench_compose(args.celeba, args.compose, args.seed, args.distance)
        return
    if args.http:
        bench_http(args.celeba, args.http, args.seed, args.distance, args.http_parallel)
        return
    crops = _test_crops(args.celeba)
    rng = np.random.default_rng(args.seed)
    detector = make_detector(args.detector, args.work_side)
    eyes64 = CELEBA_EYES * ALIGNED
    photos_with = faces = found = extra = default_ok = 0
    errors: list[float] = []
    t_detect: list[float] = []
    t_align: list[float] = []
    for i in range(args.photos):
        photo, placements = compose(rng, crops, args.width, args.height, args.min_face,
                                    args.max_face, args.max_angle)
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            got = find_faces(photo, detector, ALIGNED)
            t1 = time.perf_counter()
            for f in got:
                warp_face(photo, f.matrix, ALIGNED)
            runs.append((t1 - t0, time.perf_counter() - t1))
        t_detect.append(statistics.median(r[0] for r in runs))
        t_align.append(statistics.median(r[1] for r in runs))
        any_found = False
        matched: set[int] = set()
        for place in placements:
            faces += 1
            to_photo = invert_affine(place)
            centre = apply_affine(to_photo, np.array([[64.0, 64.0]]))[0]
            side = 128 * float(np.sqrt(abs(np.linalg.det(to_photo[:, :2]))))
            near = [f for f in got if np.linalg.norm(
                np.array([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2]) - centre)
                < 0.5 * side]
            if not near:
                continue
            found += 1
            any_found = True
            matched.update(id(g) for g in near)
            f = min(near, key=lambda f: np.linalg.norm(
                np.array([(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2]) - centre))
            # true eye positions in the photo -> where the found alignment puts them
            true_eyes = apply_affine(to_photo, CELEBA_EYES * 128)
            errors.extend(np.linalg.norm(apply_affine(f.matrix, true_eyes) - eyes64, axis=1))
        photos_with += any_found
        extra += sum(id(g) not in matched for g in got)
        default_ok += bool(got) and id(got[0]) in matched
        print(f"\r{i + 1}/{args.photos} photos", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    err = np.array(errors)
    print(f"detector {args.detector} (work side {args.work_side} px); {args.photos} photos "
          f"{args.width}x{args.height}, "
          f"{faces} faces ({args.min_face}-{args.max_face} px, up to {args.max_angle:g} deg), "
          f"seed {args.seed}")
    print(f"photos with a face found: {photos_with / args.photos:.3f}")
    print(f"faces found: {found / max(1, faces):.3f} ({found}/{faces}); extra faces (none "
          f"pasted there): {extra} in {args.photos} photos; default face (the largest) is a "
          f"pasted one: {default_ok / args.photos:.3f}")
    if len(err):
        print(f"eye error in the 64 px aligned face (px): median {np.median(err):.2f}, "
              f"p90 {np.percentile(err, 90):.2f}, share under 3 px {np.mean(err < 3):.3f}")
    print(f"time per photo (median of {args.repeats} runs each; median over photos): "
          f"detect+landmarks {1000 * statistics.median(t_detect):.0f} ms, "
          f"align {1000 * statistics.median(t_align):.1f} ms")


if __name__ == "__main__":
    main()
