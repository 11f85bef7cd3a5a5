"""Unsupervised directions of a pipeline's generator, with the evidence of what they move.

The maths is in :mod:`axes.discover`; here the generator-specific parts: the first layer's
weight (SeFa), intermediate activations of sampled latents (GANSpace-style PCA), and the
attributes each direction moves, measured by rendering seeded faces at ``-distance`` and
``+distance`` along it and labelling them with the extractor.

Results are deterministic for a pipeline and arguments, so :func:`discover_cached` keeps
them on the pipeline (the API's ``GET /axes/discover`` computes each method once).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from axes.discover import nearest_axes, pca_directions, sefa_directions, top_moves
from axes.plots import save_edit_strip
from tlgan.latents import DEFAULT_SPACE
from tlgan.pipeline import Pipeline, Stopped
from tlgan_base.artifact import atomic_artifact_dir, atomic_path, save_config

#: the methods, and the default (see docs/evidence.md "Discovering directions")
METHODS = ("sefa", "pca")
DEFAULT_METHOD = "sefa"
#: faces rendered at each end of every direction to measure what it moves
DEFAULT_FACES = 32
#: how far along a direction (unit vectors, z units) the faces move each way
DEFAULT_DISTANCE = 3.0
#: sampled latents whose activations the PCA method decomposes
PCA_SAMPLES = 2000
#: the first seed of the faces rendered to measure moves (and of the PCA samples + 10**6)
DISCOVER_SEED = 2_000_000
#: attributes listed per direction
TOP_ATTRIBUTES = 5


@dataclass
class Discovered:
    """Directions found without labels, and what each one moves.

    Attributes:
        method: "sefa" or "pca".
        directions: (K, L) unit rows in the pipeline's latent space.
        scores: (K,) eigenvalues (sefa) or explained-variance fractions (pca).
        moves: (K, A) mean P(+distance) - P(-distance) per extractor attribute.
        attributes: the extractor's attributes (A,), [] without an extractor.
        nearest: per direction the bundle axis with the largest |cosine| (or None).
        faces, distance: how the moves were measured.
    """

    method: str
    directions: np.ndarray
    scores: np.ndarray
    moves: np.ndarray
    attributes: list[str]
    nearest: list[dict[str, Any] | None]
    faces: int
    distance: float

    def head(self, k: int) -> Discovered:
        """The first ``k`` directions (both methods return them best first)."""
        return Discovered(self.method, self.directions[:k], self.scores[:k], self.moves[:k],
                          self.attributes, self.nearest[:k], self.faces, self.distance)

    def rows(self, top: int = TOP_ATTRIBUTES) -> list[dict[str, Any]]:
        """One JSON-friendly dict per direction (the API's and the CLI's shape)."""
        return [{"index": i, "direction": [float(x) for x in d], "score": float(s),
                 "moves": top_moves(m, self.attributes, top) if self.attributes else {},
                 "nearest_axis": n}
                for i, (d, s, m, n) in enumerate(zip(self.directions, self.scores, self.moves,
                                                      self.nearest, strict=True))]


def discover_cost(k: int, faces: int = DEFAULT_FACES, method: str = DEFAULT_METHOD) -> int:
    """The face-passes :func:`discover` takes: 2 faces per direction and face, plus the
    PCA samples' forward passes (counted as whole faces)."""
    return 2 * k * faces + (PCA_SAMPLES if method == "pca" else 0)


def _first_module(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.ConvTranspose2d, nn.Conv2d)):
            return m
    raise ValueError("method: the generator has no Linear/convolution layer for SeFa; "
                     "use method pca")


def _space_module(pipeline: Pipeline) -> nn.Module:
    """The module that renders latents of the pipeline's space."""
    gen = pipeline.generator
    if pipeline.latent_space == DEFAULT_SPACE:
        return gen.module
    assert gen.synthesis is not None
    return gen.synthesis


def first_layer_weight(pipeline: Pipeline) -> np.ndarray:
    """The weight ``(L, D)`` of the generator's first layer on the latent (``h = z @ W``):
    a ConvTranspose2d on a 1x1 input (DCGAN) flattened to (L, C*kh*kw), or a Linear layer's
    weight transposed. ValueError (naming ``method``) when the first layer is neither or does
    not take the latent size."""
    layer = _first_module(_space_module(pipeline))
    weight = layer.weight
    assert isinstance(weight, torch.Tensor)
    w = weight.detach().float().cpu()
    size = pipeline.latent_size
    if isinstance(layer, nn.ConvTranspose2d) and w.shape[0] == size:
        return w.flatten(1).numpy().astype(np.float64)
    if isinstance(layer, nn.Linear) and w.shape[1] == size:
        return w.T.numpy().astype(np.float64)
    raise ValueError(f"method: the generator's first layer ({type(layer).__name__}, weight "
                     f"{tuple(w.shape)}) does not act linearly on a latent of size {size}; "
                     "use method pca")


def activations(pipeline: Pipeline, z: np.ndarray, layer: int = 1,
                batch: int = 256) -> np.ndarray:
    """Flattened outputs (N, D) of the generator's ``layer``-th activation module
    (ReLU/LeakyReLU, 0-based, in module order) for latents ``z`` (N, L) of the pipeline's
    space."""
    module = _space_module(pipeline)
    acts = [m for m in module.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    if not acts:
        raise ValueError("method: the generator has no ReLU/LeakyReLU layer to decompose")
    hooked = acts[min(layer, len(acts) - 1)]
    got: list[torch.Tensor] = []

    def keep(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        got.append(out.detach().flatten(1).float().cpu())

    handle = hooked.register_forward_hook(keep)
    try:
        for start in range(0, len(z), batch):
            pipeline.generator.render_tensor(z[start:start + batch], pipeline.latent_space)
    finally:
        handle.remove()
    return torch.cat(got).numpy()


def measure_moves(pipeline: Pipeline, directions: np.ndarray, *, faces: int = DEFAULT_FACES,
                  distance: float = DEFAULT_DISTANCE, seed: int = DISCOVER_SEED,
                  should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Mean change of every attribute's probability (K, A) when ``faces`` seeded faces move
    from ``-distance`` to ``+distance`` along each direction (K, L)."""
    if faces < 1:
        raise ValueError(f"faces: must be >= 1, got {faces}")
    if not np.isfinite(distance) or distance <= 0:
        raise ValueError(f"distance: must be a positive number, got {distance}")
    z = pipeline.seeds_to_latents(range(seed, seed + faces)).astype(np.float64)
    out = []
    for d in directions:
        if should_stop is not None and should_stop():
            raise Stopped("stopped between directions: nobody waits for the result")
        both = np.concatenate([z - distance * d, z + distance * d]).astype(np.float32)
        probs = pipeline.label_latents(both)
        out.append(probs[faces:].mean(axis=0) - probs[:faces].mean(axis=0))
    return np.asarray(out, dtype=np.float64).reshape(len(directions), len(pipeline.attributes))


def find_directions(pipeline: Pipeline, method: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` directions (k, L) and their scores (k,) of ``method`` (no labelling)."""
    if method == "sefa":
        return sefa_directions(first_layer_weight(pipeline), k)
    if method == "pca":
        z = pipeline.seeds_to_latents(range(DISCOVER_SEED + 10**6,
                                            DISCOVER_SEED + 10**6 + PCA_SAMPLES))
        return pca_directions(activations(pipeline, z), z, k)
    raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")


def discover(pipeline: Pipeline, method: str = DEFAULT_METHOD, k: int = 10, *,
             faces: int = DEFAULT_FACES, distance: float = DEFAULT_DISTANCE,
             should_stop: Callable[[], bool] | None = None) -> Discovered:
    """Find ``k`` directions with ``method`` and measure what each moves (needs an
    extractor for the moves; without one they are empty) and its nearest bundle axis."""
    dirs, scores = find_directions(pipeline, method, k)
    if pipeline.extractor is not None:
        moves = measure_moves(pipeline, dirs, faces=faces, distance=distance,
                              should_stop=should_stop)
    else:
        moves = np.zeros((len(dirs), 0))
    bundle = pipeline.bundle
    nearest: list[dict[str, Any] | None] = [None] * len(dirs)
    if bundle is not None and len(bundle.names):
        nearest = nearest_axes(dirs, np.asarray(bundle.directions), bundle.names)
    return Discovered(method, dirs.astype(np.float32), scores, moves, pipeline.attributes,
                      nearest, faces, float(distance))


_LOCK = threading.Lock()


def discover_cached(pipeline: Pipeline, method: str = DEFAULT_METHOD, k: int = 10,
                    should_stop: Callable[[], bool] | None = None) -> Discovered:
    """:func:`discover` with the default faces and distance, kept on the pipeline per method:
    a later call for the same or fewer directions answers from memory (both methods give
    their directions best first, so the first ``k`` of a larger result are the result)."""
    cache: dict[str, Discovered] = pipeline.__dict__.setdefault("_discovered", {})
    with _LOCK:
        hit = cache.get(method)
    if hit is not None and len(hit.directions) >= k:
        return hit.head(k)
    found = discover(pipeline, method, k, should_stop=should_stop)
    with _LOCK:
        old = cache.get(method)
        if old is None or len(old.directions) < k:
            cache[method] = found
    return found


def cached(pipeline: Pipeline, method: str, k: int) -> Discovered | None:
    """The cached result for ``method`` and ``k`` directions, if there is one."""
    hit = pipeline.__dict__.get("_discovered", {}).get(method)
    return hit.head(k) if hit is not None and len(hit.directions) >= k else None


def save_strips(pipeline: Pipeline, found: Discovered, path: str | Path, *,
                seed: int = DISCOVER_SEED, n_steps: int = 7) -> Path:
    """A PNG with one row per direction: the face of ``seed`` moved from ``-distance`` to
    ``+distance`` along it in ``n_steps`` steps."""
    steps = np.linspace(-found.distance, found.distance, n_steps)
    z = pipeline.seeds_to_latents([seed])[0].astype(np.float64)
    moved = z[None, None, :] + steps[None, :, None] * found.directions[:, None, :]
    images = pipeline.render(moved.reshape(-1, z.shape[0]).astype(np.float32))
    images = images.reshape(len(found.directions), n_steps, *images.shape[1:])
    labels = [f"{found.method} {r['index']}: "
              + ", ".join(f"{a} {v:+.2f}" for a, v in list(r["moves"].items())[:2])
              for r in found.rows(top=2)]
    return save_edit_strip(images, [f"{s:+.1f}" for s in steps], labels, path,
                           title=f"{found.method} directions, face of seed {seed}")


def save_discovered(pipeline: Pipeline, found: Discovered, out: str | Path) -> Path:
    """Write the folder ``out`` atomically: ``directions.npz`` (directions, scores, moves),
    ``strips.png`` and ``config.json`` (kind "discovered-directions", provenance, each
    direction's top moves and nearest axis, file checksums)."""
    out = Path(out)
    with atomic_artifact_dir(out) as tmp:
        with atomic_path(tmp / "directions.npz") as npz, open(npz, "wb") as fh:
            np.savez(fh, directions=found.directions, scores=found.scores, moves=found.moves)
        save_strips(pipeline, found, tmp / "strips.png")
        gen = pipeline.generator
        save_config(tmp, {
            "kind": "discovered-directions", "method": found.method,
            "k": len(found.directions), "latent_space": pipeline.latent_space,
            "latent_size": pipeline.latent_size, "faces": found.faces,
            "distance": found.distance, "seed": DISCOVER_SEED,
            "pca_samples": PCA_SAMPLES if found.method == "pca" else None,
            "attributes": found.attributes,
            "provenance": {"generator": gen.name, "generator_sha256": gen.sha256,
                           "extractor": getattr(pipeline.extractor, "name", None),
                           "extractor_sha256": getattr(pipeline.extractor, "sha256", None),
                           "bundle": pipeline.bundle_id, "created": _now()},
            "directions": [{k: v for k, v in r.items() if k != "direction"}
                           for r in found.rows()],
        })
    return out


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
