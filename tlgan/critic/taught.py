"""A realism critic taught by eye: a logistic-regression head on the generator's own
intermediate feature statistics, fitted to faces marked broken or fine by a person.

The features of a latent z are the per-channel mean and standard deviation of the output of
one of the generator's ReLU layers (the DCGAN's second, 256 channels at 8x8, gives 512
numbers), computed from z without rendering the rest of the face. A StandardScaler and an L2
logistic regression of "broken" on them are chosen (layer, C) by seeded 5-fold
cross-validation on the marks (``teach_critic``, ``tlgan critic teach``); the head is saved as
plain arrays (scaler mean/scale, weights, bias) in ``head.safetensors`` with a
``config.json``. :class:`TaughtCritic` scores latents: minus the head's logit of broken
(higher = more realistic), differentiable in z.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from torch import nn

from tlgan.latents import DEFAULT_SPACE
from tlgan.tied_weights import TiedModel, check_generator
from tlgan_base.artifact import (
    ArtifactError,
    atomic_artifact_dir,
    load_config,
    read_json_object,
    save_config,
    sha256_file,
)
from tlgan_base.classifier_metrics import roc_auc

if TYPE_CHECKING:
    from tlgan.generators.base import FaceGenerator

__all__ = ["DEFAULT_CS", "DEFAULT_FOLDS", "DEFAULT_LAYERS", "DEFAULT_MIN_AUC", "HEAD_FILE",
           "KIND", "METHOD", "Marks", "TaughtCritic", "cross_validate", "feature_stats",
           "read_marks", "relu_layers", "teach_critic"]

KIND = "taught-critic"
HEAD_FILE = "head.safetensors"
METHOD = "generator-relu-stats-logistic-v1"
#: the grid searched by cross-validation: indexes of the generator's ReLU layers, and the
#: inverse L2 strengths of the logistic regression
DEFAULT_LAYERS = (0, 1, 2, 3)
DEFAULT_CS = (0.01, 0.1, 1.0)
DEFAULT_FOLDS = 5
#: a head is saved only if the lower end of its cv AUC's 95% bootstrap interval is above this
DEFAULT_MIN_AUC = 0.6
#: bootstrap resamples of the cross-validated AUC's interval
BOOTSTRAPS = 2000
#: latents turned into features at once
FEATURE_BATCH = 256


class _Reached(Exception):
    """Raised by the forward hook once the chosen layer has run (the rest is not needed)."""

    def __init__(self, output: torch.Tensor) -> None:
        super().__init__("layer reached")
        self.output = output


def relu_layers(module: nn.Module) -> list[nn.Module]:
    """The ReLU layers of a generator module, in the order ``module.modules()`` lists them."""
    return [m for m in module.modules() if isinstance(m, nn.ReLU)]


def feature_stats(generator: FaceGenerator, z: torch.Tensor, layer: int) -> torch.Tensor:
    """Per-channel mean and standard deviation (N, 2C) of the output of the generator's
    ReLU number ``layer`` for latents z (N, latent_size) in its "z" space; the module stops
    there. Differentiable in z unless called under ``torch.no_grad``.

    Raises:
        ValueError: ``layer`` is not a ReLU index of the generator (named ``layer``), or z
            is not (N, latent_size) and finite (named ``z``).
    """
    relus = relu_layers(generator.module)
    if not 0 <= layer < len(relus):
        raise ValueError(f"layer: generator {generator.name!r} has ReLU layers 0.."
                         f"{len(relus) - 1}, got {layer}")
    generator.check_latents(z)

    def reached(_m: nn.Module, _i: Any, out: torch.Tensor) -> None:
        raise _Reached(out)

    hook = relus[layer].register_forward_hook(reached)
    x = z[:, :, None, None] if generator.spatial_latent else z
    try:
        generator.module(x)
    except _Reached as stop:
        act = stop.output
    else:  # pragma: no cover - every ReLU of the module runs in its forward
        raise ValueError(f"layer: ReLU {layer} of generator {generator.name!r} never ran")
    finally:
        hook.remove()
    return torch.cat([act.mean((2, 3)), act.std((2, 3))], dim=1)


def latent_features(generator: FaceGenerator, z: np.ndarray, layer: int) -> np.ndarray:
    """:func:`feature_stats` of numpy latents (N, L), float64 (N, 2C), in batches."""
    parts = []
    with torch.inference_mode():
        for s in range(0, len(z), FEATURE_BATCH):
            zt = torch.as_tensor(np.asarray(z[s:s + FEATURE_BATCH], np.float32),
                                 device=generator.device)
            parts.append(feature_stats(generator, zt, layer).double().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float64)


@dataclass(frozen=True)
class Marks:
    """Faces marked by eye: seeds (N,) and whether each is broken (N,) bool, the truncation
    of their latents, the marks file's sha256 and its "how"."""

    seeds: np.ndarray
    broken: np.ndarray
    truncation: float
    sha256: str
    how: str


def read_marks(path: str | Path, generator: FaceGenerator) -> Marks:
    """Read a marks file: ``{"generator", "generator_sha256", "truncation", "how",
    "seeds": {seed: broken true/false}}``.

    Raises:
        ValueError: not such a file, marks of another generator, or only one class (named
            ``marks``).
    """
    try:
        obj = read_json_object(path, "marks")
    except ArtifactError as exc:
        raise ValueError(str(exc)) from None
    sha = obj.get("generator_sha256")
    if sha != generator.sha256:
        raise ValueError(f"marks: {path} marks faces of generator {obj.get('generator')!r} "
                         f"(sha256 {str(sha)[:12]}...), not of {generator.name!r} (sha256 "
                         f"{generator.sha256[:12]}...)")
    raw = obj.get("seeds")
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"marks: {path} has no 'seeds' object of seed -> broken")
    try:
        seeds = sorted(int(s) for s in raw)
        truncation = float(obj.get("truncation", 1.0))
    except (TypeError, ValueError):
        raise ValueError(f"marks: {path} has a seed or truncation that is not a number") \
            from None
    values = [raw[str(s)] for s in seeds]
    if not all(isinstance(v, bool) for v in values):
        raise ValueError(f"marks: {path}: every seed must map to true (broken) or false")
    broken = np.array(values, dtype=bool)
    if broken.all() or not broken.any():
        raise ValueError(f"marks: {path} needs both broken and fine faces")
    return Marks(np.array(seeds, np.int64), broken, truncation, sha256_file(path),
                 str(obj.get("how", "")))


def _fit(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                          float]:
    """StandardScaler + L2 logistic regression of y on x: (mean, scale, weights, bias)."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit((x - mean) / scale, y)
    return mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0])


def cross_validate(x: np.ndarray, broken: np.ndarray, c: float, folds: int = DEFAULT_FOLDS,
                   seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold logits of broken (N,) of a head fitted with ``c`` in seeded stratified
    ``folds``-fold cross-validation, and each fold's AUC (fine above broken)."""
    from sklearn.model_selection import StratifiedKFold

    logits = np.zeros(len(x), np.float64)
    per_fold = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, broken):
        mean, scale, w, b = _fit(x[train], broken[train], c)
        logits[test] = ((x[test] - mean) / scale) @ w + b
        per_fold.append(float(roc_auc(~broken[test], -logits[test]) or 0.5))
    return logits, per_fold


def bootstrap_interval(broken: np.ndarray, scores: np.ndarray, seed: int = 0,
                       n: int = BOOTSTRAPS) -> tuple[float, float]:
    """The 95% bootstrap interval (2.5th, 97.5th percentile) of the AUC of ``scores``
    (higher = fine) against ``broken``, faces resampled with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n):
        idx = rng.integers(0, len(broken), len(broken))
        auc = roc_auc(~broken[idx], scores[idx])
        if auc is not None:
            aucs.append(auc)
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    return float(lo), float(hi)


def teach_critic(marks_path: str | Path, out: str | Path, generator: FaceGenerator, *,
                 layers: Sequence[int] = DEFAULT_LAYERS, cs: Sequence[float] = DEFAULT_CS,
                 folds: int = DEFAULT_FOLDS, seed: int = 0, min_auc: float = DEFAULT_MIN_AUC,
                 log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Teach a realism critic from marks and write its folder ``out`` atomically.

    Every (layer, C) of the grid is cross-validated on the marks (seeded stratified folds);
    the best pooled out-of-fold AUC wins (ties: the earlier layer, then the smaller C), its
    head is refitted on all marks and saved with the cv AUC, its fold spread and a 95%
    bootstrap interval.

    Returns:
        The config.json written.

    Raises:
        ValueError: bad marks, grid or folds (named), or the chosen head's interval reaches
            down to ``min_auc`` (named ``marks``: near chance, nothing is saved).
    """
    if not layers:
        raise ValueError("layers: give at least one ReLU layer index")
    if not cs or any(not (math.isfinite(c) and c > 0) for c in cs):
        raise ValueError(f"cs: must be positive numbers, got {list(cs)}")
    if folds < 2:
        raise ValueError(f"folds: must be >= 2, got {folds}")
    marks = read_marks(marks_path, generator)
    if min(int(marks.broken.sum()), int((~marks.broken).sum())) < folds:
        raise ValueError(f"folds: {folds} folds need as many broken and fine marks")
    z = generator.sample_latents(marks.seeds.tolist(), marks.truncation)
    grid: list[dict[str, Any]] = []
    best: tuple[float, int, float, np.ndarray, list[float]] | None = None
    for layer in layers:
        x = latent_features(generator, z, layer)
        for c in cs:
            logits, per_fold = cross_validate(x, marks.broken, c, folds, seed)
            auc = float(roc_auc(~marks.broken, -logits) or 0.5)
            grid.append({"layer": layer, "features": x.shape[1], "C": c, "cv_auc": auc,
                         "fold_aucs": per_fold})
            log(f"layer {layer} ({x.shape[1]} features) C {c:g}: cv AUC {auc:.3f} "
                f"(folds {min(per_fold):.2f}-{max(per_fold):.2f})")
            if best is None or auc > best[0]:
                best = (auc, layer, c, logits, per_fold)
    assert best is not None
    auc, layer, c, logits, per_fold = best
    lo, hi = bootstrap_interval(marks.broken, -logits, seed)
    log(f"chosen: layer {layer} C {c:g}, cv AUC {auc:.3f} (95% bootstrap {lo:.3f}-{hi:.3f})")
    if lo <= min_auc:
        raise ValueError(f"marks: the best head's cv AUC {auc:.3f} has a 95% interval "
                         f"{lo:.3f}-{hi:.3f} reaching down to {min_auc} (near chance): "
                         "nothing saved; mark more faces")
    x = latent_features(generator, z, layer)
    mean, scale, w, b = _fit(x, marks.broken, c)
    config = {
        "kind": KIND, "format_version": 1, "method": METHOD,
        "method_description": (
            f"StandardScaler + L2 logistic regression (C={c:g}) of broken on the per-channel "
            f"mean and std of the generator's ReLU {layer} output ({x.shape[1]} features); "
            "score = minus the logit of broken"),
        "generator": {"name": generator.name, "sha256": generator.sha256},
        "marks": {"file": Path(marks_path).name, "sha256": marks.sha256,
                  "faces": len(marks.seeds), "broken": int(marks.broken.sum()),
                  "seeds": [int(marks.seeds.min()), int(marks.seeds.max())],
                  "truncation": marks.truncation, "how": marks.how},
        "layer": layer, "features": int(x.shape[1]), "C": c,
        "selection": {"folds": folds, "seed": seed, "layers": list(layers), "cs": list(cs),
                      "grid": grid, "min_auc": min_auc},
        "metrics": {"cv_auc": auc, "cv_auc_interval95": [lo, hi],
                    "fold_auc_mean": float(np.mean(per_fold)),
                    "fold_auc_std": float(np.std(per_fold)), "fold_aucs": per_fold},
    }
    with atomic_artifact_dir(out) as tmp:
        save_file({"mean": mean, "scale": scale, "weights": w,
                   "bias": np.array([b], np.float64)}, str(tmp / HEAD_FILE))
        written = save_config(tmp, config)
    return written


class TaughtCritic(TiedModel):
    """A taught head bound to the generator whose features it reads (a
    ``tlgan_base.protocols.LatentRealismScorer``): score = minus the logit of broken.

    Args:
        generator: the generator (its sha256 must be the one the head was taught for).
        layer: the ReLU index whose feature statistics the head reads.
        mean, scale, weights, bias: the scaler and the logistic regression (float64).
        name, sha256: registry name or folder; sha256 of ``head.safetensors``.
        config: the folder's config.json.
    """

    def __init__(self, generator: FaceGenerator, layer: int, mean: np.ndarray,
                 scale: np.ndarray, weights: np.ndarray, bias: float, *, name: str,
                 sha256: str, config: dict[str, Any] | None = None) -> None:
        size = 2 * _channels(generator, layer)
        for arg, arr in (("mean", mean), ("scale", scale), ("weights", weights)):
            if np.shape(arr) != (size,) or not np.isfinite(arr).all():
                raise ValueError(f"{arg}: expected {size} finite numbers for ReLU {layer}, "
                                 f"got shape {np.shape(arr)}")
        if not (scale > 0).all():
            raise ValueError("scale: must be positive")
        self.generator = generator
        self.layer = layer
        self.mean, self.scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        self.weights, self.bias = np.asarray(weights, np.float64), float(bias)
        dev = generator.device
        self._t = tuple(torch.as_tensor(a, dtype=torch.float32, device=dev)
                        for a in (self.mean, self.scale, self.weights))
        super().__init__(name, sha256, config)

    @property
    def generator_sha256(self) -> str:
        return self.generator.sha256

    @property
    def resolution(self) -> int:
        return self.generator.resolution

    @classmethod
    def from_folder(cls, folder: str | Path, generator: FaceGenerator, *,
                    name: str | None = None) -> TaughtCritic:
        """Load a folder written by ``tlgan critic teach`` for ``generator``.

        Raises:
            ArtifactError: missing/corrupt files, or taught for another generator.
        """
        folder = Path(folder)
        config = load_config(folder, kind=KIND, verify=True)
        name = name or str(folder)
        try:
            if HEAD_FILE not in config["files"]:
                raise ValueError(f"does not list {HEAD_FILE}")
            gen_info = dict(config["generator"])
            layer = int(config["layer"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{folder / 'config.json'} is not a valid taught-critic "
                                f"config ({type(exc).__name__}: {exc})") from None
        check_generator("critic", name, gen_info, generator.sha256, "tlgan critic teach")
        try:
            arrays = load_file(str(folder / HEAD_FILE))
            return cls(generator, layer, arrays["mean"], arrays["scale"], arrays["weights"],
                       float(arrays["bias"][0]), name=name,
                       sha256=str(config["files"][HEAD_FILE]), config=config)
        except (SafetensorError, OSError, KeyError, IndexError, ValueError) as exc:
            raise ArtifactError(f"{folder / HEAD_FILE} is not the head its config.json "
                                f"describes ({exc})") from None

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for ``tlgan info`` and ``GET /generators``)."""
        return {"name": self.name, "sha256": self.sha256, "kind": KIND,
                "generator_sha256": self.generator_sha256, "resolution": self.resolution,
                "layer": self.layer, "metrics": self.config.get("metrics", {})}

    def _check_space(self, space: str) -> None:
        if space != DEFAULT_SPACE:
            raise ValueError(f"space: the taught critic {self.name!r} reads latents of space "
                             f"{DEFAULT_SPACE!r}, got {space!r}")

    def score_latents_tensor(self, z: torch.Tensor, space: str = DEFAULT_SPACE
                             ) -> torch.Tensor:
        """Realism scores (N,) of latents z (N, L) on the generator's device: minus the
        head's logit of broken; differentiable in z.

        Raises:
            ValueError: a space other than "z" (named ``space``), or bad z (named ``z``).
        """
        self._check_space(space)
        mean, scale, w = self._t
        f = feature_stats(self.generator, z, self.layer)
        return -(((f - mean) / scale) @ w + self.bias)

    def score_latents(self, z: np.ndarray, space: str = DEFAULT_SPACE) -> np.ndarray:
        """Realism scores float64 (N,) of numpy latents z (N, L) (the head applied in
        float64 to the features).

        Raises:
            ValueError: a space other than "z" (named ``space``), or bad z (named ``z``).
        """
        self._check_space(space)
        arr = np.asarray(z)
        if len(arr) == 0:
            return np.zeros(0, np.float64)
        f = latent_features(self.generator, arr, self.layer)
        out: np.ndarray = -(((f - self.mean) / self.scale) @ self.weights + self.bias)
        return out


def _channels(generator: FaceGenerator, layer: int) -> int:
    """The channels of the generator's ReLU ``layer`` output (one latent run to find out)."""
    with torch.inference_mode():
        z = torch.zeros((1, generator.latent_size), device=generator.device)
        return feature_stats(generator, z, layer).shape[1] // 2

