"""What crosses the layers, as structural types: an extractor and a pipeline as the code that
takes them uses them (``feature_extractor.model.Extractor`` and ``tlgan.pipeline.Pipeline``
fit these without naming them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import torch

__all__ = ["ImageEmbedder", "JudgePipeline", "LabellingPipeline", "LatentRealismScorer",
           "Named", "RealismScorer", "SeededGenerator", "StatsBundle"]


class Named(Protocol):
    """A model with a name and the sha256 of its weights."""

    @property
    def name(self) -> str: ...
    @property
    def sha256(self) -> str: ...


class ImageEmbedder(Named, Protocol):
    """An extractor that labels and embeds images: probabilities (N, A) and embeddings
    (N, E) of uint8 images (N, H, W, 3) at ``input_size`` px."""

    @property
    def input_size(self) -> int: ...
    @property
    def embedding_size(self) -> int: ...
    def predict_with_embeddings(self, images: np.ndarray, batch_size: int = 256
                                ) -> tuple[np.ndarray, np.ndarray]: ...


class RealismScorer(Named, Protocol):
    """A realism critic for one generator's faces: one score per face, higher = more
    realistic (a logit: comparable across faces, not a probability).

    ``score_tensor`` takes float images (N, 3, H, W) in [0, 1] at ``resolution`` px on the
    critic's device and is differentiable (the realism hold follows its gradient);
    ``score`` takes uint8 images (N, H, W, 3) and returns float64 numpy (N,).
    """

    @property
    def resolution(self) -> int: ...
    @property
    def generator_sha256(self) -> str: ...
    def score_tensor(self, images: torch.Tensor) -> torch.Tensor: ...
    def score(self, images: np.ndarray) -> np.ndarray: ...


class LatentRealismScorer(Named, Protocol):
    """A realism critic of one generator's latents, as ranking and the realism hold use it:
    one score per latent, higher = more realistic (less likely broken).

    ``score_latents`` takes numpy latents z (N, L) of latent space ``space`` and returns
    float64 (N,); ``score_latents_tensor`` takes a tensor on the generator's device and is
    differentiable in z. A critic of images renders the latents through its generator; a
    critic taught on the generator's own features reads them from z.
    """

    @property
    def generator_sha256(self) -> str: ...
    def score_latents(self, z: np.ndarray, space: str = "z") -> np.ndarray: ...
    def score_latents_tensor(self, z: torch.Tensor, space: str = "z") -> torch.Tensor: ...
    def describe(self) -> dict[str, Any]: ...


class SeededGenerator(Named, Protocol):
    """A generator that maps seeds to latents of a latent space."""

    def sample_latents(self, seeds: Iterable[int], truncation: float = 1.0,
                       space: str = "z") -> np.ndarray: ...


class LabellingPipeline(Protocol):
    """A pipeline that labels the faces of latents: probabilities (N, A) of
    ``attributes``."""

    @property
    def attributes(self) -> list[str]: ...
    @property
    def latent_space(self) -> str: ...
    @property
    def generator(self) -> SeededGenerator: ...
    def label_latents(self, z: np.ndarray, space: str | None = None) -> np.ndarray: ...


class JudgePipeline(LabellingPipeline, Protocol):
    """A labelling pipeline whose extractor (None: none loaded) can be named."""

    @property
    def extractor(self) -> Named | None: ...


class StatsBundle(Protocol):
    """An axis bundle's per-axis fit statistics, one dict per axis."""

    @property
    def stats(self) -> list[dict[str, Any]]: ...
