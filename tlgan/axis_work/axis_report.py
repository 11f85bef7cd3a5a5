"""``tlgan axes report``: look at the axes, not just their numbers.

For every axis: an edit strip (several faces x steps along the orthogonalized axis) and
response curves re-scored by the extractor (the target's mean probability vs step, and the
reference attributes' drift when moving along the raw axis vs the orthogonalized one). Plus
the axes' cosine-similarity heatmaps (raw and orthogonalized) and ``summary.md`` /
``summary.json`` with the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from axes.bundle import AxisBundle
from axes.maths import cosine_matrix
from axes.plots import (
    save_cosine_heatmap,
    save_edit_strip,
    save_face_changes,
    save_response_curves,
)
from tlgan.pipeline import Pipeline
from tlgan.pipeline.locality import frame_face_ratio
from tlgan_base.artifact import write_bytes_atomic, write_json_atomic
from tlgan_base.progress import progress_bar


def _curve(pipeline: Pipeline, z: np.ndarray, direction: np.ndarray, steps: np.ndarray,
           cols: list[int]) -> np.ndarray:
    """Mean probabilities (S, len(cols)) of faces moved by each step along ``direction``."""
    moved = z[None, :, :] + steps[:, None, None] * direction[None, None, :]
    moved = moved.reshape(-1, z.shape[1])
    probs = pipeline.label_latents(moved.astype(np.float32)).reshape(len(steps), len(z), -1)
    return probs[:, :, cols].mean(axis=1)


def axis_report(pipeline: Pipeline, bundle: AxisBundle, out: str | Path, *,
                faces: int = 6, curve_faces: int = 48, max_step: float = 3.0, n_steps: int = 7,
                seed: int = 1000, axes: list[str] | None = None, progress: bool = True,
                face_faces: int = 16, swing: float = 0.3) -> dict[str, Any]:
    """Write the report folder ``out``; return the summary figures.

    Per axis also (on ``face_faces`` of the curve faces): the frame/face change ratio of a
    move by +2 with locality off and on (:func:`tlgan.pipeline.locality.frame_face_ratio`), and per
    face the change of each other reference's probability under moves by -``max_step`` and
    +``max_step``, open loop and with the references held (``Pipeline.hold_edit``), drawn
    in ``faces/<axis>.png`` with the share of faces that move by more than ``swing``.
    """
    out = Path(out)
    (out / "strips").mkdir(parents=True, exist_ok=True)
    (out / "curves").mkdir(parents=True, exist_ok=True)
    (out / "faces").mkdir(parents=True, exist_ok=True)
    attrs = pipeline.attributes
    names = axes or [n for n in bundle.names]
    unknown = [n for n in names if n not in bundle.names]
    if unknown:
        raise ValueError(f"axes: unknown axis {unknown[0]!r}; valid: {', '.join(bundle.names)}")
    refs = [r for r in bundle.references if r in attrs]
    steps = np.linspace(-max_step, max_step, n_steps)
    step_labels = [f"{s:+.1f}" for s in steps]
    z_strip = pipeline.seeds_to_latents(range(seed, seed + faces))
    z_curve = pipeline.seeds_to_latents(range(seed + faces, seed + faces + curve_faces))
    calibration = bundle.calibration
    rows: list[dict[str, Any]] = []
    for name in progress_bar(names, desc="report", unit="axis", enabled=progress):
        i = bundle.index(name)
        ortho = bundle.directions[i].astype(np.float64)
        raw = bundle.raw_directions[i].astype(np.float64)
        moved = (z_strip[:, None, :] + steps[None, :, None] * ortho[None, None, :])
        images = pipeline.render(moved.reshape(-1, pipeline.latent_size).astype(np.float32))
        images = images.reshape(faces, n_steps, *images.shape[1:])
        save_edit_strip(images, step_labels, [f"seed {seed + k}" for k in range(faces)],
                        out / "strips" / f"{name}.png",
                        title=f"{name}: steps along the orthogonalized axis")
        row: dict[str, Any] = {"axis": name, "reference": name in bundle.references,
                               "calibration_logit_per_unit": _f(calibration[i]),
                               "auc_holdout": _f(bundle.stats[i].get("auc_holdout")),
                               "holds": bundle.held_references(name)}
        for r in bundle.references:  # recorded by `tlgan axes judge` (another extractor)
            if f"judge_drag_{r}" in bundle.stats[i]:
                row[f"judge_drag_{r}"] = _f(bundle.stats[i][f"judge_drag_{r}"])
        if name in attrs:
            tcol = attrs.index(name)
            drift_refs = [r for r in refs if r != name]
            cols = [tcol] + [attrs.index(r) for r in drift_refs]
            after = _curve(pipeline, z_curve, ortho, steps, cols)
            before = _curve(pipeline, z_curve, raw, steps, cols) if drift_refs else after
            save_response_curves(
                steps, {name: after[:, 0]},
                {r: before[:, k + 1] for k, r in enumerate(drift_refs)},
                {r: after[:, k + 1] for k, r in enumerate(drift_refs)},
                out / "curves" / f"{name}.png",
                title=f"{name}: target and reference drift (dashed raw, solid orthogonalized)")
            row["target_delta"] = _f(after[-1, 0] - after[0, 0])
            row["target_at_min"], row["target_at_max"] = _f(after[0, 0]), _f(after[-1, 0])
            for k, r in enumerate(drift_refs):
                row[f"drift_{r}_raw"] = _f(before[-1, k + 1] - before[0, k + 1])
                row[f"drift_{r}_ortho"] = _f(after[-1, k + 1] - after[0, k + 1])
        row.update(_per_face(pipeline, z_curve[:face_faces], name, refs, max_step, swing,
                             out / "faces" / f"{name}.png"))
        rows.append(row)
    save_cosine_heatmap(cosine_matrix(bundle.raw_directions), bundle.names,
                        out / "cosine_raw.png", title="cosine similarity: raw GLM axes")
    save_cosine_heatmap(cosine_matrix(bundle.directions), bundle.names,
                        out / "cosine_orthogonalized.png",
                        title="cosine similarity: orthogonalized axes")
    summary = {"bundle": bundle.id, "provenance": bundle.provenance, "steps": steps.tolist(),
               "faces_per_curve": curve_faces, "axes": rows}
    write_json_atomic(out / "summary.json", summary)
    write_bytes_atomic(out / "summary.md", _markdown(summary, refs).encode())
    return summary


def _per_face(pipeline: Pipeline, z: np.ndarray, name: str, refs: list[str],
              max_step: float, swing: float, path: Path) -> dict[str, Any]:
    """Frame/face ratios (locality off/on) and per-face reference changes (open loop /
    references held) of one axis; draws ``path`` when there is a reference to watch."""
    row: dict[str, Any] = {}
    base = pipeline.render(z)
    moves = {name: 2.0}
    moved = np.stack([pipeline.edit(zi, moves) for zi in z])
    row["frame_face_off"] = _f(frame_face_ratio(base, pipeline.render(moved)))
    if pipeline.has_locality and pipeline.locality_mask(moves) is not None:
        local, _ = pipeline.render_edit(z, moved, moves, True, with_features=False)
        row["frame_face_on"] = _f(frame_face_ratio(base, local))
    watch = [r for r in refs if r != name]
    if not watch:
        return row
    cols = [pipeline.attributes.index(r) for r in watch]
    p0 = pipeline.label_latents(z)[:, cols]
    locality = pipeline.resolve_locality(None)
    changes: dict[str, dict[str, list[np.ndarray]]] = {r: {"open": [], "held": []}
                                                        for r in watch}
    for sign in (-1.0, 1.0):
        mv = {name: sign * max_step}
        m = np.stack([pipeline.edit(zi, mv) for zi in z])
        _, p_open = pipeline.render_edit(z, m, mv, locality)
        assert p_open is not None
        p_held = pipeline.hold_edit(z, m, mv, locality=locality).probs
        for k, r in enumerate(watch):
            changes[r]["open"].append(p_open[:, cols[k]] - p0[:, k])
            changes[r]["held"].append(p_held[:, cols[k]] - p0[:, k])
    flat = {r: {k: np.concatenate(v) for k, v in d.items()} for r, d in changes.items()}
    for key in ("open", "held"):
        moved_far = np.zeros(len(z) * 2, bool)
        for r in watch:
            moved_far |= np.abs(flat[r][key]) > swing
        row[f"swing_share_{key}"] = _f(moved_far.mean())
    save_face_changes(flat, path, threshold=swing,
                      title=f"{name} ±{max_step:g}: change per face of the other references "
                            f"({len(z)} faces x 2 signs; open loop vs held)")
    return row


def _f(x: Any) -> float | None:
    return None if x is None or not np.isfinite(float(x)) else round(float(x), 4)


def _markdown(summary: dict[str, Any], refs: list[str]) -> str:
    steps = summary["steps"]
    judged = [r for r in refs if any(f"judge_drag_{r}" in row for row in summary["axes"])]
    judge = (summary["provenance"].get("reference_drag") or {}).get("judge")
    lines = [f"# Axis report: bundle {summary['bundle']}", "",
             f"Generator `{summary['provenance'].get('generator')}`, extractor "
             f"`{summary['provenance'].get('extractor')}`, fitted on "
             f"{summary['provenance'].get('n')} samples with "
             f"`{summary['provenance'].get('method')}`.",
             "", f"Moves from {steps[0]:+.1f} to {steps[-1]:+.1f} (unit axes in z; |z| is about "
             f"10), mean over {summary['faces_per_curve']} faces. Δ = P(at max) − P(at min). "
             "Drift columns: raw axis → orthogonalized axis."
             + (f" Judge columns: Δ P(reference) over moves of the same size seen by "
                f"`{judge}`, an extractor that did not label the samples (`tlgan axes judge`)."
                if judged else ""), "",
             "| axis | ref | AUC held-out | logit/unit | P(min) | P(max) | Δ target | "
             + " | ".join(f"Δ {r} raw→ortho" for r in refs)
             + "".join(f" | Δ {r} judge" for r in judged) + " | strip |",
             "|" + "---|" * (8 + len(refs) + len(judged))]
    for r in summary["axes"]:
        def fmt(v: Any) -> str:
            return "–" if v is None else f"{v:.2f}"
        drift = [f"{fmt(r.get(f'drift_{x}_raw'))} → {fmt(r.get(f'drift_{x}_ortho'))}"
                 if f"drift_{x}_raw" in r else "–" for x in refs]
        lines.append(
            f"| {r['axis']} | {'✓' if r['reference'] else ''} | {fmt(r.get('auc_holdout'))} | "
            f"{fmt(r.get('calibration_logit_per_unit'))} | {fmt(r.get('target_at_min'))} | "
            f"{fmt(r.get('target_at_max'))} | {fmt(r.get('target_delta'))} | "
            + " | ".join(drift) + "".join(f" | {fmt(r.get(f'judge_drag_{x}'))}" for x in judged)
            + f" | ![](strips/{r['axis']}.png) |")
    lines += ["", "## Local edits and per-face changes", "",
              "Frame/face: mean |pixel change| in the outer 6 px over that in the central "
              "28x28 for a move by +2, locality off → on (– : the axis is global). Swing: "
              f"share of faces whose other reference moves by more than 0.3 under ±{steps[-1]:g}, "
              "open loop → references held (`hold_references`).", "",
              "| axis | frame/face off | frame/face on | swing open | swing held | per face |",
              "|---|---|---|---|---|---|"]
    for r in summary["axes"]:
        def pct(v: Any) -> str:
            return "–" if v is None else f"{v:.0%}"

        def num(v: Any) -> str:
            return "–" if v is None else f"{v:.2f}"
        fig = (f"![](faces/{r['axis']}.png)" if r.get("swing_share_open") is not None
               else "–")
        lines.append(f"| {r['axis']} | {num(r.get('frame_face_off'))} | "
                     f"{num(r.get('frame_face_on'))} | {pct(r.get('swing_share_open'))} | "
                     f"{pct(r.get('swing_share_held'))} | {fig} |")
    lines += ["", "![raw cosines](cosine_raw.png)",
              "![orthogonalized cosines](cosine_orthogonalized.png)", ""]
    return "\n".join(lines)
