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

    python bench/photos.py --celeba /work/shared/data/celeba-subset --photos 60 --seed 0
    python bench/photos.py --photos 60 --seed 0 --detector dlib-hog   # a candidate (own venv)
    python bench/photos.py --template 200    # the eye template's provenance (CELEBA_EYES)

Candidates (``--detector``): ``opencv`` (the product's, tlgan.photos.faces.HaarFaceDetector),
``mediapipe`` (mediapipe 0.10.21's bundled BlazeFace short-range model, 6 keypoints; needs
numpy<2, so its own venv), ``dlib-hog`` (dlib-bin's HOG detector; no landmark model ships,
so eyes are placed from the box).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path[0] = str(Path(__file__).resolve().parents[1])

from tlgan.photos.faces import (  # noqa: E402
    CELEBA_EYES,
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


def make_detector(name: str) -> FaceDetector:
    if name == "opencv":
        return HaarFaceDetector()
    if name == "mediapipe":
        return _MediaPipe()
    if name == "dlib-hog":
        return _DlibHog()
    raise SystemExit(f"--detector: one of opencv, mediapipe, dlib-hog, got {name!r}")


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
    ap.add_argument("--template", type=int, default=0, metavar="N",
                    help="instead: measure the eye template on N crops of partition 0")
    args = ap.parse_args(argv)
    if not (args.celeba / "list_eval_partition.txt").is_file():
        raise SystemExit(f"--celeba: no CelebA subset at {args.celeba}")
    if args.template:
        measure_template(args.celeba, args.template)
        return
    crops = _test_crops(args.celeba)
    rng = np.random.default_rng(args.seed)
    detector = make_detector(args.detector)
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
    print(f"detector {args.detector}; {args.photos} photos {args.width}x{args.height}, "
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
