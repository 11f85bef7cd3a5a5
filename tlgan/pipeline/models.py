"""The loaded models of a pipeline: render latents, label faces, embed them.

:class:`Models` holds a generator, an optional extractor and the heads (classifiers on the
extractor's embeddings) that label extra attributes; inputs are numpy latents of one latent
space, outputs numpy arrays.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from axes.bundle import AxisBundle
from axes.heads import Head
from feature_extractor.model import Extractor
from tlgan.generators.base import FaceGenerator, to_uint8
from tlgan.latents import DEFAULT_SPACE
from tlgan_base.domain_errors import clip, shown
from tlgan_base.protocols import LatentRealismScorer

__all__ = ["Models", "bundle_heads"]


@dataclass
class Models:
    """A generator rendering latents of ``space``, and an extractor (None: no labelling)
    whose probabilities are followed by one column per head in ``heads``.

    ``pass_faces``: the most faces the extractor labels or embeds in one forward pass (more
    are done in chunks, with the same results). ``critic``: the realism critic of the
    generator's faces (None: none).
    """

    generator: FaceGenerator
    extractor: Extractor | None = None
    space: str = DEFAULT_SPACE
    pass_faces: int = 64
    heads: list[tuple[str, Head]] = field(default_factory=list)
    critic: LatentRealismScorer | None = None

    def __post_init__(self) -> None:
        if self.pass_faces < 1:
            raise ValueError(f"pass_faces: must be >= 1, got {self.pass_faces}")

    @property
    def latent_size(self) -> int:
        """The length of a latent of ``space``."""
        if self.space == DEFAULT_SPACE:
            return self.generator.latent_size
        return self.generator.space_sizes()[self.space]

    @property
    def attributes(self) -> list[str]:
        """The attributes faces are labelled with: the extractor's, then the heads'."""
        if self.extractor is None:
            return []
        return [*self.extractor.attributes, *(n for n, _ in self.heads)]

    @property
    def head_axes(self) -> list[str]:
        """The names labelled by a head (columns after the extractor's attributes)."""
        return [n for n, _ in self.heads]

    def with_heads(self, extra: Sequence[tuple[str, Head]]) -> Models:
        """These models with more heads (the models themselves are shared, not copied)."""
        if not extra:
            return self
        out = copy.copy(self)
        out.heads = [*self.heads, *extra]
        return out

    def render(self, z: np.ndarray) -> np.ndarray:
        """Latents (N, L) -> uint8 faces (N, H, W, 3)."""
        return self.generator.render(z, self.space)

    def render_and_label(self, z: np.ndarray, with_features: bool = True
                         ) -> tuple[np.ndarray, np.ndarray | None]:
        """Render latents and (optionally) label the faces in one pass on the device.

        Returns uint8 faces (N, H, W, 3) and probabilities (N, A) or None.
        """
        x = self.generator.render_tensor(z, self.space)
        images = to_uint8(x)
        if not with_features:
            return images, None
        return images, self.label_tensor(x)

    def extract(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """The extractor's probabilities and embeddings (float32 arrays) of faces ``x``, at
        most ``pass_faces`` at a time."""
        assert self.extractor is not None
        probs, embs = [], []
        with torch.inference_mode():
            for start in range(0, max(1, x.shape[0]), self.pass_faces):
                p, e = self.extractor.forward_tensor(x[start:start + self.pass_faces])
                probs.append(p.float().cpu().numpy())
                embs.append(e.float().cpu().numpy())
        if len(probs) == 1:
            return probs[0], embs[0]
        return np.concatenate(probs), np.concatenate(embs)

    def label_tensor(self, x: torch.Tensor) -> np.ndarray:
        """Probabilities (N, A) of faces ``x`` (N, 3, H, W) in [0, 1]: the extractor's
        attributes, then one column per head. ValueError naming ``with_features`` without
        an extractor."""
        if self.extractor is None:
            raise ValueError("with_features: this service has no feature extractor loaded")
        out, e = self.extract(x)
        heads = [head for _, head in self.heads]
        if not heads:
            return out
        extra = np.stack([head.predict_proba(e) for head in heads], axis=1)
        return np.concatenate([out, extra.astype(np.float32)], axis=1)

    def embed_latents(self, z: np.ndarray) -> np.ndarray:
        """The extractor's embeddings (N, E) float32 of the faces rendered from latents z
        (N, L), ``pass_faces`` at a time."""
        if self.extractor is None:
            raise ValueError("examples: this service has no feature extractor loaded")
        parts = [self.extract(self.generator.render_tensor(z[i:i + self.pass_faces],
                                                           self.space))[1]
                 for i in range(0, max(1, len(z)), self.pass_faces)]
        return np.asarray(np.concatenate(parts) if len(parts) > 1 else parts[0],
                          dtype=np.float32)

    def label_latents(self, z: np.ndarray, space: str | None = None) -> np.ndarray:
        """Probabilities (N, A) of the faces rendered from z (latents of ``space``; None:
        ``self.space``), ``pass_faces`` at a time."""
        parts = [self.label_tensor(self.generator.render_tensor(z[i:i + self.pass_faces],
                                                                space or self.space))
                 for i in range(0, max(1, len(z)), self.pass_faces)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def features_dict(self, probs: np.ndarray) -> dict[str, float]:
        """One face's probabilities as {attribute: probability}."""
        return {a: float(p) for a, p in zip(self.attributes, probs, strict=True)}

    def custom_heads(self, raw: Mapping[str, Mapping[str, Any]]) -> dict[str, Head]:
        """Validate a request's heads ``{axis name: head dict}`` (the form ``POST /axes/fit``
        returns) for this extractor's embeddings.

        Raises:
            ValueError: naming ``custom_axes.<name>.head``.
        """
        out: dict[str, Head] = {}
        for name, d in raw.items():
            where = f"custom_axes.{clip(name)}.head"
            if self.extractor is None:
                raise ValueError(f"{where}: this service has no feature extractor loaded")
            try:
                head = Head.from_dict(d)
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:  # int(inf)
                raise ValueError(f"{where}: {' '.join(str(exc).split())[:200]}") from None
            if not (np.isfinite(head.weights).all() and np.isfinite(head.mean).all()
                    and np.isfinite(head.std).all() and math.isfinite(head.bias)):
                raise ValueError(f"{where}: weights, bias, mean and std must be finite")
            if head.embedding_size != self.extractor.embedding_size:
                raise ValueError(f"{where}: a head for embeddings of size "
                                 f"{head.embedding_size}; the extractor's are "
                                 f"{self.extractor.embedding_size}")
            if name in self.attributes:
                raise ValueError(f"{where}: {shown(name)} is already an attribute")
            out[name] = head
        return out


def bundle_heads(bundle: AxisBundle, extractor: Extractor) -> list[tuple[str, Head]]:
    """The bundle axes that carry a head for this extractor's embeddings and are not
    already extractor attributes, with their heads."""
    out = []
    attrs = set(extractor.attributes)
    for name in bundle.names:
        raw = bundle.head(name)
        if name in attrs or raw is None:
            continue
        try:
            head = Head.from_dict(raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"bundle: axis {name!r} carries an unreadable head ({exc})") from exc
        if head.embedding_size != extractor.embedding_size:
            raise ValueError(f"bundle: axis {name!r} carries a head for embeddings of size "
                             f"{head.embedding_size}, extractor {extractor.name!r} gives "
                             f"{extractor.embedding_size}")
        out.append((name, head))
    return out
