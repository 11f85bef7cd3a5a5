"""The report's discovery sections: a 2-D map of the cached latents and the strips of the
unsupervised directions (``tlgan axes report`` appends them to summary.md).

The map needs the sample cache's latents and probabilities: from ``--samples DIR`` (a sample
cache), else from a ``samples.npz`` shipped inside the bundle folder (arrays ``z`` and
``probs``), else it is skipped with a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from axes.plots import save_latent_map
from axes.samples import load_samples
from axes.unsupervised import pca_2d
from tlgan.axis_work.bundle_store import default_bundle_path
from tlgan.axis_work.discovery import discover, save_strips
from tlgan.pipeline import Pipeline
from tlgan_base.artifact import ArtifactError

#: the most latents drawn on the map (a seeded subset of larger caches)
MAP_POINTS = 5000


def load_map_samples(samples: Path | None, bundle_dir: Path | None,
                     attributes: list[str]) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Latents (N, L) and probabilities (N, A) for the map, and where they came from: the
    sample cache ``samples``, else ``bundle_dir/samples.npz``, else None."""
    if samples is not None:
        cache = load_samples(samples, verify=False, mmap=True)
        if cache.attributes != attributes:
            raise ValueError(f"samples: {samples} was labelled with other attributes")
        return np.asarray(cache.z), np.asarray(cache.probs), str(samples)
    path = bundle_dir / "samples.npz" if bundle_dir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if "z" not in f or "probs" not in f:
                return None
            z, probs = np.asarray(f["z"], np.float32), np.asarray(f["probs"], np.float32)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is not a readable .npz file: {exc}") from exc
    if probs.ndim != 2 or probs.shape[1] != len(attributes) or len(z) != len(probs):
        return None
    return z, probs, str(path)


def shipped_bundle_dir(pipeline: Pipeline) -> Path | None:
    """The folder of the bundle shipped for the pipeline's generator (None: none ships)."""
    try:
        return default_bundle_path(pipeline.generator.name)
    except ArtifactError:
        return None


def latent_map(out: Path, z: np.ndarray, probs: np.ndarray, attributes: list[str],
               attribute: str, seed: int = 0) -> dict[str, Any]:
    """Write ``out/latent_map.png`` (PCA of at most MAP_POINTS latents, coloured by
    ``attribute``); return its figures."""
    if attribute not in attributes:
        raise ValueError(f"map-attribute: unknown attribute {attribute!r}; valid: "
                         f"{', '.join(attributes)}")
    if len(z) > MAP_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(z), MAP_POINTS, replace=False))
        z, probs = z[keep], probs[keep]
    xy, ratio = pca_2d(z)
    col = probs[:, attributes.index(attribute)]
    labels = [f"PC {i + 1} ({r:.1%} of variance)" for i, r in enumerate(ratio)]
    save_latent_map(xy, col, out / "latent_map.png", label=f"P({attribute})",
                    title=f"{len(z)} cached latents (PCA of z) coloured by P({attribute})",
                    axis_labels=labels)
    return {"points": len(z), "attribute": attribute,
            "explained": [round(float(r), 4) for r in ratio]}


def discovery_report(pipeline: Pipeline, out: str | Path, *, samples: Path | None = None,
                     bundle_dir: Path | None = None, attribute: str | None = None,
                     k: int = 10, faces: int = 32) -> list[str]:
    """Write the map (when samples are found) and ``discovered/<method>.png`` strips for
    both methods; return the markdown lines to append to summary.md."""
    out = Path(out)
    lines = ["", "## Latent map", ""]
    attrs = pipeline.attributes
    found = load_map_samples(samples, bundle_dir, attrs) if attrs else None
    if found is None:
        lines.append("Skipped: no sample cache here (the bundle ships no `samples.npz`; "
                     "pass `--samples DIR`).")
    else:
        z, probs, where = found
        name = attribute or next((r for r in (pipeline.bundle.references
                                              if pipeline.bundle else []) if r in attrs),
                                 attrs[0])
        fig = latent_map(out, z, probs, attrs, name)
        lines += [f"{fig['points']} latents from `{where}`, projected on their two principal "
                  f"components ({fig['explained'][0]:.1%} and {fig['explained'][1]:.1%} of "
                  f"the variance), coloured by P({name}).", "", "![latent map](latent_map.png)"]
    lines += ["", "## Discovered directions", "",
              f"Top {k} directions found without labels; each row moves the same face from "
              "-3 to +3 along one direction (labels: the attributes it moves most over "
              f"{faces} faces).", ""]
    (out / "discovered").mkdir(parents=True, exist_ok=True)
    for method in ("sefa", "pca"):
        try:
            result = discover(pipeline, method, k, faces=faces)
        except ValueError as exc:  # e.g. a generator without a linear first layer
            lines.append(f"- {method}: skipped ({exc})")
            continue
        save_strips(pipeline, result, out / "discovered" / f"{method}.png")
        lines.append(f"![{method} directions](discovered/{method}.png)")
    lines.append("")
    return lines
