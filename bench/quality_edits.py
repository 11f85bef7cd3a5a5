"""Edits that stay realistic: faces after moves of +-D along a few axes, with and without the
realism hold (``tlgan.pipeline.realism``: the edit use case ``tlgan.pipeline.plan_edit``
with ``realism`` on / off), on the shipped models and their realism critic.

    python bench/quality_edits.py                     # seeds 1-64, +-3 on 5 axes, grids
    python bench/quality_edits.py --seeds 1-16 --axes Smiling --timed 8 --out runs/qe

Per move: the critic's mean score of the start faces, of the edited faces without the hold
and with it; the share of faces whose score fell more than the tolerance below their start
face's (without / with); the faces the hold moved; the moved attribute's mean probability
change (extractor) without / with the hold (the hold must not undo the edit); the time of one
single-face edit (median over --timed faces, the modes timed alternately in the same run:
without a critic (today's edit), checked only (the default with a critic), held) and the
ratio held / checked. With --out, one PNG per move: three 8x8 grids side by side, the start faces,
the edit without the hold and with it (face i at the same place in each; a face the hold
moved has a thin orange frame in the third grid), and, where the faces have by-eye labels,
a counting sheet of the faces labelled fine: 16 a row at 96 px, the edit without the hold
above the edit with it (the hold's faces framed), which is how the broken faces in
docs/axes.md were counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# `python bench/x.py` puts bench/ first on sys.path, where axes.py and api.py would shadow our
# packages: replace it with the repository root and import the helpers as bench.common.
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.common import print_table  # noqa: E402

AXES = "Smiling,Eyeglasses,Blond_Hair,Male,Young"
FRAME = (230, 140, 0)
#: by-eye labels of the raw faces of seeds 1-192 (broken or fine), for "faces that were fine"
LABELS = REPO / "bench" / "data" / "broken_faces.json"


def fine_faces(seeds: Sequence[int], generator_sha256: str, path: Path = LABELS
               ) -> np.ndarray | None:
    """Per seed, whether its raw face was labelled fine by eye (``path``); None when the
    labels are missing, for another generator or lack a seed."""
    import json

    if not path.is_file():
        return None
    labels = json.loads(path.read_text())
    if labels.get("generator_sha256") != generator_sha256 or labels.get("truncation") != 1.0:
        return None
    broken = labels["seeds"]
    if any(str(s) not in broken for s in seeds):
        return None
    return np.array([not broken[str(s)] for s in seeds])


def parse_seeds(text: str) -> list[int]:
    """``"1-64"`` or ``"1,5,9"`` -> the seeds."""
    if "-" in text:
        lo, hi = (int(v) for v in text.split("-", 1))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def grid(images: np.ndarray, columns: int = 8, frame: np.ndarray | None = None) -> np.ndarray:
    """uint8 faces (N, H, W, 3) as one image, ``columns`` per row, 2 px gaps; faces where
    ``frame`` (N,) is true get a 1 px orange frame."""
    n, h, w, _ = images.shape
    rows = -(-n // columns)
    out = np.full((rows * (h + 2) + 2, columns * (w + 2) + 2, 3), 255, np.uint8)
    for i, face in enumerate(images):
        r, c = divmod(i, columns)
        y, x = 2 + r * (h + 2), 2 + c * (w + 2)
        out[y:y + h, x:x + w] = face
        if frame is not None and frame[i]:
            out[y - 1:y + h + 1, [x - 1, x + w]] = FRAME
            out[[y - 1, y + h], x - 1:x + w + 1] = FRAME
    return out


def save_panels(path: Path, panels: Sequence[np.ndarray]) -> None:
    """Grids side by side with 12 px white gaps, written as PNG (temp file + rename)."""
    from PIL import Image

    h = max(p.shape[0] for p in panels)
    gap = np.full((h, 12, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for p in panels:
        pad = np.full((h - p.shape[0], p.shape[1], 3), 255, np.uint8)
        parts += [np.concatenate([p, pad]), gap]
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(np.concatenate(parts[:-1], axis=1)).save(tmp)
    tmp.replace(path)


def count_sheet(path: Path, off: np.ndarray, on: np.ndarray, changed: np.ndarray) -> None:
    """Rows of 16 faces at 1.5x: ``off`` above ``on`` (``changed`` framed), per 16 faces."""
    from PIL import Image

    rows = []
    for g in range(0, len(off), 16):
        rows += [grid(off[g:g + 16], 16), grid(on[g:g + 16], 16, frame=changed[g:g + 16]),
                 np.full((8, 16 * (off.shape[2] + 2) + 2, 3), 255, np.uint8)]
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)),
                                   constant_values=255) for r in rows])
    h, w = sheet.shape[:2]
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(sheet).resize((w * 3 // 2, h * 3 // 2), Image.Resampling.LANCZOS).save(tmp)
    tmp.replace(path)


def _time_one(pipeline: Any, bare: Any, z: np.ndarray, moves: dict[str, float], timed: int
              ) -> tuple[float, float, float]:
    """Median seconds of one single-face edit (the edit use case, as /edit runs it) without
    a critic (``bare``), checked and held, over the first ``timed`` faces, alternating the
    modes."""
    from tlgan.pipeline import plan_edit

    times: list[list[float]] = [[], [], []]
    for zi in z[:timed]:
        for p, realism, out in ((bare, None, times[0]), (pipeline, False, times[1]),
                                (pipeline, True, times[2])):
            t0 = time.perf_counter()
            plan_edit(p, zi[None], moves, realism=realism).run()
            out.append(time.perf_counter() - t0)
    none, checked, held = (statistics.median(t) for t in times)
    return none, checked, held


def edit_section(pipeline: Any, seeds: Sequence[int] = range(1, 65), axes: str = AXES,
                 distance: float = 3.0, out: Path | None = None, timed: int = 16,
                 max_total: float | None = None) -> dict[str, Any]:
    """The edits section of the quality bench on ``pipeline`` (which must carry a critic):
    prints a table per move and a summary, writes the grids to ``out`` (when given) and
    returns the figures (per move and over all moves). Edits use the service's defaults
    (locality and references as /edit), one batch of all seeds per move and mode;
    ``max_total``: the hold's bound on its corrections (None: REALISM_MAX_TOTAL)."""
    import dataclasses

    from tlgan.pipeline import plan_edit
    from tlgan.pipeline.realism import REALISM_TOLERANCE

    critic = pipeline.critic
    bare = dataclasses.replace(pipeline, critic=None)
    if critic is None:
        raise ValueError("pipeline: no realism critic loaded")
    z = pipeline.seeds_to_latents(list(seeds))
    fine = fine_faces(seeds, pipeline.generator.sha256)
    start_images, start_probs = pipeline.render_and_label(z)
    assert start_probs is not None
    space = pipeline.latent_space
    # the critic scores latents (a local edit's moved latent stands for its face)
    s_start = critic.score_latents(z, space)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    rows, figures = [], {}
    fell_fine: list[tuple[int, int]] = []
    drops_off, drops_on, d_off_all, d_on_all = [], [], [], []
    t_none_all, t_off_all, t_on_all = [], [], []
    for axis in axes.split(","):
        col = pipeline.attributes.index(axis) if axis in pipeline.attributes else None
        for sign in (1.0, -1.0):
            moves = {axis: sign * distance}
            res_off = plan_edit(pipeline, z, moves, realism=False).run()
            plan_on = plan_edit(pipeline, z, moves, realism=True)
            if max_total is not None:
                plan_on = dataclasses.replace(plan_on, realism_max_total=max_total)
            res_on = plan_on.run()
            real = res_on.realism
            assert real is not None
            s_off = critic.score_latents(res_off.latents, space)
            s_on = critic.score_latents(res_on.latents, space)
            drop_off = s_start - s_off > REALISM_TOLERANCE
            drop_on = s_start - s_on > REALISM_TOLERANCE
            drops_off.append(drop_off)
            drops_on.append(drop_on)
            if fine is not None:
                fell_fine.append((int((drop_off & fine).sum()), int((drop_on & fine).sum())))
            if col is not None and res_off.probs is not None and res_on.probs is not None:
                d_off = float((res_off.probs[:, col] - start_probs[:, col]).mean())
                d_on = float((res_on.probs[:, col] - start_probs[:, col]).mean())
                d_off_all.append(abs(d_off))
                d_on_all.append(abs(d_on))
                dp = f"{d_off:+.3f} / {d_on:+.3f}"
            else:
                d_off = d_on = float("nan")
                dp = "-"
            t_none, t_off, t_on = (_time_one(pipeline, bare, z, moves, timed) if timed
                                   else (0.0, 0.0, 0.0))
            t_none_all.append(t_none)
            t_off_all.append(t_off)
            t_on_all.append(t_on)
            name = f"{axis}{sign * distance:+g}"
            figures[name] = {
                "score_start": float(s_start.mean()), "score_off": float(s_off.mean()),
                "score_on": float(s_on.mean()), "dropped_off": int(drop_off.sum()),
                "dropped_on": int(drop_on.sum()), "moved_by_hold": int(real.changed.sum()),
                "dp_off": d_off, "dp_on": d_on, "ms_none": 1000 * t_none,
                "ms_off": 1000 * t_off, "ms_on": 1000 * t_on,
                "local": bool(res_on.locality),
                "fine_dropped_off": fell_fine[-1][0] if fine is not None else None,
                "fine_dropped_on": fell_fine[-1][1] if fine is not None else None}
            rows.append([name, f"{s_start.mean():.2f}", f"{s_off.mean():.2f}",
                         f"{s_on.mean():.2f}", f"{drop_off.sum()} / {drop_on.sum()}",
                         f"{fell_fine[-1][0]} / {fell_fine[-1][1]}" if fine is not None
                         else "-", str(int(real.changed.sum())), dp,
                         f"{1000 * t_none:.1f} / {1000 * t_off:.1f} / {1000 * t_on:.1f}",
                         f"{t_on / t_off:.2f}x" if t_off > 0 else "-"])
            if out is not None:
                save_panels(out / f"edit_{axis}_{'plus' if sign > 0 else 'minus'}"
                            f"{distance:g}.png",
                            [grid(start_images), grid(res_off.images),
                             grid(res_on.images, frame=real.changed)])
                if fine is not None:
                    count_sheet(out / f"count_{axis}_{'plus' if sign > 0 else 'minus'}"
                                f"{distance:g}.png", res_off.images[fine],
                                res_on.images[fine], real.changed[fine])
    n = len(z)
    print(f"{n} faces (seeds {seeds[0]}-{seeds[-1]}) moved +-{distance:g} along each axis, "
          f"service defaults; critic {critic.name}, tolerance {REALISM_TOLERANCE} (logits); "
          + (f"{int(fine.sum())} of them fine by eye ({LABELS.name})" if fine is not None
             else "no by-eye labels of these seeds"))
    print_table(["move", "score start", "no hold", "hold", f"drop > {REALISM_TOLERANCE} "
                 "no hold / hold", "of fine faces", "moved by hold", "attr dP no hold / hold",
                 "ms/edit no critic / checked / held", "held/checked"], rows)
    off_all, on_all = np.concatenate(drops_off), np.concatenate(drops_on)
    t_none_m = statistics.median(t_none_all) if timed else 0.0
    t_off_m = statistics.median(t_off_all) if timed else 0.0
    t_on_m = statistics.median(t_on_all) if timed else 0.0
    summary = {
        "edits": int(off_all.size), "dropped_off": int(off_all.sum()),
        "dropped_on": int(on_all.sum()), "share_off": float(off_all.mean()),
        "share_on": float(on_all.mean()),
        "mean_abs_dp_off": float(np.mean(d_off_all)) if d_off_all else float("nan"),
        "mean_abs_dp_on": float(np.mean(d_on_all)) if d_on_all else float("nan"),
        "ms_none": 1000 * t_none_m, "ms_off": 1000 * t_off_m, "ms_on": 1000 * t_on_m,
        "ratio": t_on_m / t_off_m if t_off_m > 0 else float("nan"),
        "fine_edits": int(fine.sum()) * len(fell_fine) if fine is not None else None,
        "fine_dropped_off": sum(f[0] for f in fell_fine) if fine is not None else None,
        "fine_dropped_on": sum(f[1] for f in fell_fine) if fine is not None else None}
    print(f"all {summary['edits']} edits: score drop > {REALISM_TOLERANCE} in "
          f"{summary['dropped_off']} ({summary['share_off']:.1%}) without the hold, "
          f"{summary['dropped_on']} ({summary['share_on']:.1%}) with it; mean |attr dP| "
          f"{summary['mean_abs_dp_off']:.3f} / {summary['mean_abs_dp_on']:.3f}; one edit "
          f"(median over moves of the per-move medians) {summary['ms_none']:.1f} ms without a "
          f"critic, {summary['ms_off']:.1f} ms checked, {summary['ms_on']:.1f} ms held "
          f"({summary['ratio']:.2f}x checked)")
    if fine is not None:
        print(f"of the {summary['fine_edits']} edits of faces fine by eye: score drop > "
              f"{REALISM_TOLERANCE} in {summary['fine_dropped_off']} without the hold, "
              f"{summary['fine_dropped_on']} with it")
    if out is not None:
        print(f"grids: {out}/edit_AXIS_plus|minus{distance:g}.png (start | no hold | hold, "
              "8 faces a row from the first seed; orange frame: moved by the hold)")
    return {"moves": figures, "all": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1-64", help="e.g. 1-64 or 1,2,3")
    ap.add_argument("--axes", default=AXES)
    ap.add_argument("--distance", type=float, default=3.0)
    ap.add_argument("--timed", type=int, default=16,
                    help="single-face edits timed per move and mode (0: none)")
    ap.add_argument("--out", type=Path, default=None, help="folder for the grids (PNG)")
    ap.add_argument("--max-total", type=float, default=None,
                    help="the hold's bound on its corrections (default REALISM_MAX_TOTAL)")
    args = ap.parse_args()

    from tlgan.assembly import load_pipeline

    edit_section(load_pipeline(), parse_seeds(args.seeds), args.axes, args.distance,
                 args.out, args.timed, args.max_total)


if __name__ == "__main__":
    main()
