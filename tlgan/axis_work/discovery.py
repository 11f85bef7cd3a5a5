"""Unsupervised directions of a pipeline's generator, with the evidence of what they move.

The maths is in :mod:`axes.unsupervised`; here the generator-specific parts: the first layer's
weight (SeFa), intermediate activations of sampled latents (GANSpace-style PCA), and the
attributes each direction moves, measured by rendering seeded faces at ``-distance`` and
``+distance`` along it and labelling them with the extractor.

Results are deterministic for a pipeline and arguments, so :func:`discover_cached` keeps
them on the pipeline (the API's ``GET /axes/discover`` computes each method once).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from axes.plots import save_edit_strip
from axes.unsupervised import (
    GRAM_BLOCK,
    MAX_K,
    nearest_axes,
    pca_directions,
    sefa_directions,
    top_moves,
)
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
#: what one PCA sample costs (forward to the activation, its share of the Gram matrix and
#: eigenvectors) in face-passes (render + label): measured 0.05 and 0.10 in two runs of
#: ``python -m bench.discover`` (DCGAN 64 px, 2 CPU threads), counted double
PCA_SAMPLE_COST = 0.2
#: the most memory the PCA method may take (:func:`pca_bytes`) unless told otherwise (the
#: service passes its ``max_request_memory_mb``); DCGAN 64 px: 2,000 x 16,384 activations
#: = 125 MiB, 156 MiB in all
PCA_MAX_BYTES = 512 * 2**20
#: latents per forward pass of :func:`activations`
PCA_BATCH = 250
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
    PCA samples' work (PCA_SAMPLE_COST face-passes each)."""
    return 2 * k * faces + (math.ceil(PCA_SAMPLES * PCA_SAMPLE_COST) if method == "pca" else 0)


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


class _Reached(Exception):
    """Raised by the private copy's hook: the activation wanted, the rest not computed."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__("activation reached")
        self.out = out


def _truncated_copy(pipeline: Pipeline, layer: int) -> nn.Module:
    """A private copy of the module rendering the pipeline's space whose ``layer``-th
    activation module (ReLU/LeakyReLU, 0-based, the last if fewer) ends the forward pass by
    raising :class:`_Reached` with its output. The shared generator gets no hook, so
    discovery never sees (nor slows, nor breaks) other requests' renders."""
    module = copy.deepcopy(_space_module(pipeline)).eval()
    acts = [m for m in module.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    if not acts:
        raise ValueError("method: the generator has no ReLU/LeakyReLU layer to decompose")

    def reached(_m: nn.Module, _inp: Any, out: torch.Tensor) -> None:
        raise _Reached(out)

    acts[min(layer, len(acts) - 1)].register_forward_hook(reached)
    return module


def pca_bytes(samples: int, width: int) -> int:
    """The memory the PCA method takes for ``samples`` activations of ``width`` values: the
    (N, D) float32 activations, the (N, N) float64 Gram matrix and a float64 copy of it for
    the eigenvectors, one centred block of columns (N x GRAM_BLOCK float32, twice: the block
    and its product) and one chunk of forward passes (PCA_BATCH x D float32, twice)."""
    n, d = int(samples), int(width)
    return (n * d * 4 + 2 * n * n * 8 + 2 * n * min(GRAM_BLOCK, d) * 4
            + 2 * min(PCA_BATCH, n) * d * 4)


def pca_memory(pipeline: Pipeline) -> int:
    """:func:`pca_bytes` of this pipeline's PCA (PCA_SAMPLES activations of the generator's
    layer), its width found by one forward pass of one latent (remembered per pipeline)."""
    width = pipeline.__dict__.get("_pca_width")
    if width is None:
        one = activations(pipeline, pca_latents(pipeline)[:1], max_bytes=math.inf)
        width = pipeline.__dict__.setdefault("_pca_width", int(one.shape[1]))
    return pca_bytes(PCA_SAMPLES, width)


def activations(pipeline: Pipeline, z: np.ndarray, layer: int = 1, batch: int = PCA_BATCH,
                on_chunk: Callable[[], None] | None = None,
                max_bytes: float = PCA_MAX_BYTES) -> np.ndarray:
    """Flattened outputs (N, D) float32 of the generator's ``layer``-th activation module
    (ReLU/LeakyReLU, 0-based, in module order) for latents ``z`` (N, L) of the pipeline's
    space.

    Computed on a private copy of the generator's module, forward passes stopped at that
    activation (the layers after it are never run), ``batch`` latents at a time into one
    preallocated array; ``on_chunk()`` is called after each batch (a caller stops the work
    by raising from it). ValueError naming ``method`` when the PCA of them
    (:func:`pca_bytes`) would take more than ``max_bytes``."""
    gen = pipeline.generator
    space = pipeline.latent_space
    gen.check_latents(z, space=space)
    module = _truncated_copy(pipeline, layer)
    spatial = gen.spatial_latent and space == DEFAULT_SPACE
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(z), batch):
            chunk = torch.as_tensor(z[start:start + batch], dtype=torch.float32).to(gen.device)
            try:
                module(chunk[:, :, None, None] if spatial else chunk)
            except _Reached as hit:
                got = hit.out.detach().flatten(1).float().cpu().numpy()
            else:
                raise RuntimeError("the generator's forward pass never reached the "
                                   "activation layer it contains")
            if out is None:
                need = pca_bytes(len(z), got.shape[1])
                if need > max_bytes:
                    raise ValueError(
                        f"method: this generator's activation has {got.shape[1]} values per "
                        f"face; PCA of {len(z)} of them would take {need / 2**20:.0f} MiB, "
                        f"more than the {max_bytes / 2**20:.0f} MiB it may use; use method "
                        "sefa")
                out = np.empty((len(z), got.shape[1]), dtype=np.float32)
            out[start:start + len(got)] = got
            if on_chunk is not None:
                on_chunk()
    if out is None:
        raise ValueError("z: no latents given")
    return out


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


def _stop_check(should_stop: Callable[[], bool] | None) -> Callable[[], None] | None:
    """A callback for the steps of the work: raises :class:`Stopped` once ``should_stop()``."""
    if should_stop is None:
        return None

    def check() -> None:
        if should_stop():
            raise Stopped("stopped between steps: nobody waits for the result")

    return check


def _check_k(k: int, most: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= most:
        raise ValueError(f"k: must be an integer in 1..{most}, got {k!r}")


def pca_latents(pipeline: Pipeline) -> np.ndarray:
    """The seeded latents (PCA_SAMPLES, L) whose activations the PCA method decomposes."""
    first = DISCOVER_SEED + 10**6
    return pipeline.seeds_to_latents(range(first, first + PCA_SAMPLES))


def find_directions(pipeline: Pipeline, method: str, k: int,
                    should_stop: Callable[[], bool] | None = None,
                    max_bytes: float = PCA_MAX_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` directions (k, L) and their scores (k,) of ``method`` (no labelling).

    PCA checks ``should_stop()`` after every chunk of forward passes and every block of
    its Gram matrix (raising :class:`Stopped`); its memory (:func:`pca_bytes`: the float32
    activations, the (N, N) Gram matrix) is at most ``max_bytes``, else ValueError naming
    ``method``."""
    if method == "sefa":
        return sefa_directions(first_layer_weight(pipeline), k)
    if method != "pca":
        raise ValueError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    _check_k(k, min(pipeline.latent_size, PCA_SAMPLES - 1, MAX_K))
    check = _stop_check(should_stop)
    z = pca_latents(pipeline)
    acts = activations(pipeline, z, on_chunk=check, max_bytes=max_bytes)
    if acts.shape[0] != len(z):  # our own arrays: never the client's fault
        raise RuntimeError(f"PCA discovery: {acts.shape[0]} activations for {len(z)} latents")
    _check_k(k, min(pipeline.latent_size, PCA_SAMPLES - 1, acts.shape[1], MAX_K))
    try:
        return pca_directions(acts, z, k, on_block=check)
    except ValueError as exc:  # e.g. NaN activations: the generator's fault, not the request's
        raise RuntimeError(f"PCA discovery failed: {exc}") from exc


def discover(pipeline: Pipeline, method: str = DEFAULT_METHOD, k: int = 10, *,
             faces: int = DEFAULT_FACES, distance: float = DEFAULT_DISTANCE,
             should_stop: Callable[[], bool] | None = None,
             max_bytes: float = PCA_MAX_BYTES) -> Discovered:
    """Find ``k`` directions with ``method`` and measure what each moves (needs an
    extractor for the moves; without one they are empty) and its nearest bundle axis;
    ``max_bytes`` bounds PCA's memory (:func:`find_directions`)."""
    dirs, scores = find_directions(pipeline, method, k, should_stop=should_stop,
                                   max_bytes=max_bytes)
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
                    should_stop: Callable[[], bool] | None = None,
                    max_bytes: float = PCA_MAX_BYTES) -> Discovered:
    """:func:`discover` with the default faces and distance, kept on the pipeline per method:
    a later call for the same or fewer directions answers from memory (both methods give
    their directions best first, so the first ``k`` of a larger result are the result)."""
    cache: dict[str, Discovered] = pipeline.__dict__.setdefault("_discovered", {})
    with _LOCK:
        hit = cache.get(method)
    if hit is not None and len(hit.directions) >= k:
        return hit.head(k)
    found = discover(pipeline, method, k, should_stop=should_stop, max_bytes=max_bytes)
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
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
