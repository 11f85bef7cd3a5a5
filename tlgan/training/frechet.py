"""Fréchet distance between Gaussian fits of embedding sets (the FID recipe, any extractor).

``FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. The trace of the matrix square
root is computed as ``tr((A S2 A)^(1/2))`` with ``A = S1^(1/2)`` from a symmetric eigen-
decomposition: ``A S2 A`` is symmetric positive semi-definite, so its square root's trace is the
sum of the square roots of its (clipped non-negative) eigenvalues. This needs no complex
arithmetic and stays finite for singular covariances (fewer samples than dimensions).

Embeddings come from the feature extractor's penultimate layer (its ``forward_tensor`` contract:
float images (N, 3, H, W) in [0, 1] -> ``(probs, embeddings)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import torch

from feature_extractor.extractor_weights import load_extractor


class EmbeddingExtractor(Protocol):
    """What the metric needs from an extractor."""

    name: str

    def forward_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


def embedding_stats(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (E,) and covariance (E, E) in float64 of embeddings (N, E), N >= 2."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"embeddings: expected shape (N, E) with N >= 2, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings: contain NaN or infinity")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); >= 0, 0 for equal inputs."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"mu: shapes differ or are not vectors: {mu1.shape} vs {mu2.shape}")
    e = mu1.shape[0]
    if s1.shape != (e, e) or s2.shape != (e, e):
        raise ValueError(f"sigma: expected ({e}, {e}) matrices, got {s1.shape} and {s2.shape}")
    a = _sqrt_psd(s1)
    m = a @ s2 @ a
    eig = np.linalg.eigvalsh((m + m.T) / 2.0)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(fd, 0.0)


def fd_from_embeddings(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between two embedding sets (N, E) and (M, E)."""
    return frechet_distance(*embedding_stats(a), *embedding_stats(b))


def load_metric_extractor(spec: str | None, device: Any) -> EmbeddingExtractor:
    """Load the extractor whose embeddings the metric uses (None = the registry default).

    Raises:
        ArtifactError / ValueError: from the extractor registry (missing or bad weights).
    """
    extractor: EmbeddingExtractor = load_extractor(spec, device)
    return extractor


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def embed_uint8(extractor: EmbeddingExtractor, images: np.ndarray, device: Any,
                batch: int = 250) -> np.ndarray:
    """Embeddings (N, E) float64 of uint8 images (N, H, W, 3)."""
    outs = []
    with torch.inference_mode():
        for sl in _batches(len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[sl])).to(device)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            _, emb = extractor.forward_tensor(x)
            outs.append(emb.detach().float().cpu().numpy().astype(np.float64))
    return np.concatenate(outs) if outs else np.empty((0, 0))


def embed_generated(extractor: EmbeddingExtractor,
                    render: Callable[[torch.Tensor], torch.Tensor],
                    z: torch.Tensor, batch: int = 250) -> np.ndarray:
    """Embeddings of ``render(z)`` (float images in [0, 1]), rendered in batches."""
    outs = []
    with torch.inference_mode():
        for sl in _batches(z.shape[0], batch):
            _, emb = extractor.forward_tensor(render(z[sl]))
            outs.append(emb.detach().float().cpu().numpy().astype(np.float64))
    return np.concatenate(outs)


def subset(images: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A seeded random subset of ``n`` images (all of them, in order, if n >= len)."""
    if n >= len(images):
        return images
    idx = np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
    return images[idx]


class Reference:
    """Embedding statistics of the real reference faces, and the real-vs-real floor.

    The reference is the test partition (all of the training images' ``n``-subset when the
    data has no test partition). The floor is the Fréchet distance between ``n`` training
    faces and the test faces: what a generator that reproduced the training distribution
    exactly would score with the same sample size (``None`` without a test partition).
    """

    def __init__(self, extractor: EmbeddingExtractor, train: np.ndarray,
                 test: np.ndarray | None, n: int, device: Any, seed: int = 0) -> None:
        if n < 2:
            raise ValueError(f"n: the metric needs at least 2 samples, got {n}")
        self.n = n
        self.extractor_name = str(getattr(extractor, "name", type(extractor).__name__))
        train_part = subset(train, n, seed)
        train_emb = embed_uint8(extractor, train_part, device)
        if test is not None and len(test) >= 2:
            test_emb = embed_uint8(extractor, test, device)
            self.mu, self.sigma = embedding_stats(test_emb)
            self.floor: float | None = frechet_distance(*embedding_stats(train_emb),
                                                        self.mu, self.sigma)
            self.n_ref = len(test)
            self.reference = "test partition"
        else:
            self.mu, self.sigma = embedding_stats(train_emb)
            self.floor = None
            self.n_ref = len(train_part)
            self.reference = "training images (no test partition)"

    def score(self, embeddings: np.ndarray) -> float:
        """Fréchet distance of generated embeddings to the reference."""
        return frechet_distance(*embedding_stats(embeddings), self.mu, self.sigma)

    def describe(self) -> dict[str, Any]:
        return {"extractor": self.extractor_name, "n_generated": self.n,
                "n_reference": self.n_ref, "reference": self.reference,
                "fd_floor": self.floor}
