"""Report figures: edit strips, response curves and the axis cosine heatmap.

Figures are drawn with matplotlib's object API on an Agg canvas created inside each function
(``pyplot`` and the global backend are never touched, so importing this module is cheap and
safe in servers). PNGs are written atomically: a temporary file in the same folder, then a
rename.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from tlgan_base.artifact import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["save_cosine_heatmap", "save_edit_strip", "save_face_changes", "save_latent_map",
           "save_response_curves"]


def _new_figure(width: float, height: float) -> Figure:
    # lazy: matplotlib is needed only by the reports, and is slow to import
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def save_edit_strip(images: ArrayLike, step_labels: Sequence[str], row_labels: Sequence[str],
                    path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Save a grid of edited faces: one row per edit (``row_labels``), one column per step.

    Args:
        images: ``(rows, steps, H, W, 3)`` uint8.
        step_labels: ``steps`` column labels (e.g. "-2", "0", "+2").
        row_labels: ``rows`` row labels (e.g. "Smiling", "Smiling | lock Male").
        path: output PNG.
        title: optional figure title.
    """
    imgs = np.asarray(images)
    if imgs.ndim != 5 or imgs.shape[-1] != 3 or 0 in imgs.shape:
        raise ValueError(f"images must have shape (rows, steps, H, W, 3), got {imgs.shape}")
    if imgs.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {imgs.dtype}")
    rows, steps, h, w, _ = imgs.shape
    if len(step_labels) != steps:
        raise ValueError(f"step_labels must have {steps} entries, got {len(step_labels)}")
    if len(row_labels) != rows:
        raise ValueError(f"row_labels must have {rows} entries, got {len(row_labels)}")
    pad = max(1, min(h, w) // 32)
    canvas = np.full((rows * (h + pad) - pad, steps * (w + pad) - pad, 3), 255, np.uint8)
    for r in range(rows):
        for s in range(steps):
            y0, x0 = r * (h + pad), s * (w + pad)
            canvas[y0:y0 + h, x0:x0 + w] = imgs[r, s]
    scale = 1.6 / max(h, w)  # about 1.6 inches per cell
    fig = _new_figure(max(3.0, steps * w * scale + 2.0), max(2.0, rows * h * scale + 0.8))
    ax = fig.add_axes((0.18, 0.08, 0.8, 0.8 if title else 0.88))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([s * (w + pad) + w / 2 for s in range(steps)])
    ax.set_xticklabels([str(x) for x in step_labels])
    ax.set_yticks([r * (h + pad) + h / 2 for r in range(rows)])
    ax.set_yticklabels([str(x) for x in row_labels])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title)
    return _save_png(fig, path)


def _curves(name: str, curves: Mapping[str, ArrayLike], n: int) -> dict[str, np.ndarray]:
    if not isinstance(curves, Mapping):
        raise ValueError(f"{name} must be a mapping name -> (steps,) array")
    out = {}
    for key, value in curves.items():
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != (n,):
            raise ValueError(f"{name}[{key!r}] must have shape ({n},), got {arr.shape}")
        out[str(key)] = arr
    return out


def save_response_curves(steps: ArrayLike, target_curves: Mapping[str, ArrayLike],
                         drift_before: Mapping[str, ArrayLike],
                         drift_after: Mapping[str, ArrayLike], path: str | os.PathLike[str],
                         title: str | None = None) -> Path:
    """Save response curves: target attributes vs step, and locked attributes' drift.

    Left panel: mean probability of each target attribute vs step along its axis. Right
    panel: mean probability of each locked attribute vs step, before locking (dashed) and
    after (solid), same colour per attribute.

    Args:
        steps: ``(S,)`` step distances.
        target_curves: ``{name: (S,) mean prob}``.
        drift_before, drift_after: ``{locked_name: (S,) mean prob}`` without / with locking.
        path: output PNG. title: optional figure title.
    """
    xs = np.asarray(steps, dtype=np.float64)
    if xs.ndim != 1 or xs.size == 0:
        raise ValueError(f"steps must be a non-empty vector (S,), got shape {xs.shape}")
    tgt = _curves("target_curves", target_curves, xs.size)
    before = _curves("drift_before", drift_before, xs.size)
    after = _curves("drift_after", drift_after, xs.size)
    if not tgt:
        raise ValueError("target_curves must hold at least one curve")
    fig = _new_figure(11.0, 4.2)
    ax1 = fig.add_subplot(1, 2, 1)
    for key, ys in tgt.items():
        ax1.plot(xs, ys, marker="o", ms=3, label=key)
    ax1.set(xlabel="step along axis (z units)", ylabel="mean probability", ylim=(-0.02, 1.02),
            title="target attributes")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax2 = fig.add_subplot(1, 2, 2)
    colors: dict[str, Any] = {}
    for i, key in enumerate(sorted(set(before) | set(after))):
        colors[key] = f"C{i % 10}"
    for key, ys in before.items():
        ax2.plot(xs, ys, ls="--", color=colors[key], label=f"{key} (not locked)")
    for key, ys in after.items():
        ax2.plot(xs, ys, ls="-", color=colors[key], label=f"{key} (locked)")
    ax2.set(xlabel="step along axis (z units)", ylabel="mean probability", ylim=(-0.02, 1.02),
            title="locked attributes: drift")
    ax2.grid(alpha=0.3)
    if colors:
        ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save_png(fig, path)


def save_face_changes(changes: Mapping[str, Mapping[str, ArrayLike]],
                      path: str | os.PathLike[str], threshold: float = 0.3,
                      title: str | None = None) -> Path:
    """Save per-face distributions: one panel per attribute, one box (with every face as a
    dot) per setting, of the change of that attribute's probability per face; dotted lines
    at +-``threshold``.

    Args:
        changes: ``{attribute: {setting: (N,) change of probability per face}}``.
        path: output PNG. title: optional figure title.
    """
    panels = {a: {k: np.asarray(v, dtype=np.float64).ravel() for k, v in d.items()}
              for a, d in changes.items()}
    if not panels or any(not d or any(v.size == 0 for v in d.values())
                         for d in panels.values()):
        raise ValueError("changes must hold at least one attribute, each with non-empty "
                         "settings")
    fig = _new_figure(1.0 + 2.6 * len(panels), 3.8)
    rng = np.random.default_rng(0)
    for i, (attr, d) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.boxplot(list(d.values()), showfliers=False)
        for k, v in enumerate(d.values()):
            ax.scatter(k + 1 + rng.uniform(-0.15, 0.15, v.size), v, s=6, alpha=0.5)
        ax.set_xticks(range(1, len(d) + 1), list(d), fontsize=8)
        for y in (-threshold, threshold):
            ax.axhline(y, ls=":", color="grey")
        ax.set(ylim=(-1.02, 1.02), ylabel="change of probability per face", title=attr)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save_png(fig, path)


def save_cosine_heatmap(matrix: ArrayLike, names: Sequence[str], path: str | os.PathLike[str],
                        title: str | None = None) -> Path:
    """Save a heatmap of a ``(K, K)`` cosine matrix with axis ``names`` (values shown if
    K <= 20)."""
    mat = np.asarray(matrix, dtype=np.float64)
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or mat.shape[0] == 0:
        raise ValueError(f"matrix must be a square (K, K) array, got shape {mat.shape}")
    k = mat.shape[0]
    if len(names) != k:
        raise ValueError(f"names must have {k} entries, got {len(names)}")
    size = max(4.0, 0.32 * k + 2.5)
    fig = _new_figure(size + 1.0, size)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(mat, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    ax.set_xticks(range(k))
    ax.set_xticklabels([str(n) for n in names], rotation=90, fontsize=7)
    ax.set_yticks(range(k))
    ax.set_yticklabels([str(n) for n in names], fontsize=7)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(mat[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title or "cosine between axes")
    fig.tight_layout()
    return _save_png(fig, path)


def save_latent_map(coords: ArrayLike, values: ArrayLike, path: str | os.PathLike[str], *,
                    label: str = "probability", title: str | None = None,
                    axis_labels: Sequence[str] = ("PC 1", "PC 2")) -> Path:
    """Save a 2-D scatter of latents (``coords`` (N, 2), e.g. from
    :func:`axes.unsupervised.pca_2d`) coloured by ``values`` (N,) in [0, 1] (an attribute's
    probability, colour bar titled ``label``)."""
    xy = np.asarray(coords, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
        raise ValueError(f"coords must have shape (N, 2), got {xy.shape}")
    if vals.shape != (len(xy),):
        raise ValueError(f"values must have shape ({len(xy)},), got {vals.shape}")
    if len(axis_labels) != 2:
        raise ValueError(f"axis_labels must have 2 entries, got {len(axis_labels)}")
    fig = _new_figure(6.5, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    size = float(np.clip(2000.0 / len(xy), 1.0, 20.0))
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=vals, s=size, cmap="viridis", vmin=0.0, vmax=1.0,
                    linewidths=0)
    fig.colorbar(sc, ax=ax, fraction=0.046, pad=0.04, label=label)
    ax.set(xlabel=axis_labels[0], ylabel=axis_labels[1],
           title=title or f"latents coloured by {label}")
    fig.tight_layout()
    return _save_png(fig, path)
