"""The attribute CNN (plain torch) and :class:`Extractor`, the object the rest of tlgan uses.

``AttributeNet`` is a compact ResNet: a 3x3 stem (stride 2 at 64 px, stride 4 at 128 px) and
four stages of basic residual blocks (widths 32-64-128-256 by default), global average
pooling to the embedding, dropout and one linear layer to one logit per attribute. The
penultimate embedding is what new attributes are learnt on (a linear head on frozen
embeddings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from feature_extractor.transforms import resize_square
from tlgan_base.devices import memory_format, resolve_device

ARCH = "resnet-compact-v1"


@dataclass(frozen=True)
class ModelConfig:
    """Shape of an :class:`AttributeNet` (recorded as ``config["model"]`` with the weights)."""

    num_attributes: int = 40
    input_size: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 256)
    depths: tuple[int, ...] = (2, 2, 2, 2)
    dropout: float = 0.1
    arch: str = ARCH

    def __post_init__(self) -> None:
        if self.input_size not in (64, 128):
            raise ValueError(f"input_size must be 64 or 128, got {self.input_size}")
        if len(self.widths) != len(self.depths) or not self.widths:
            raise ValueError("widths and depths must be non-empty and of equal length")
        if self.num_attributes < 1:
            raise ValueError("num_attributes must be at least 1")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["depths"] = list(self.depths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`as_dict`; raises ValueError on an unknown architecture."""
        if d.get("arch", ARCH) != ARCH:
            raise ValueError(f"unknown extractor architecture {d.get('arch')!r}, expected {ARCH}")
        return cls(
            num_attributes=int(d["num_attributes"]),
            input_size=int(d["input_size"]),
            widths=tuple(int(w) for w in d["widths"]),
            depths=tuple(int(v) for v in d["depths"]),
            dropout=float(d.get("dropout", 0.0)),
        )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x), inplace=True)


class AttributeNet(nn.Module):
    """Normalized (N, 3, S, S) images -> (N, A) logits; :meth:`embed` gives the embedding."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        stem = cfg.widths[0]
        layers: list[nn.Module] = [
            nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)
        ]
        if cfg.input_size == 128:
            layers.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*layers)
        blocks: list[nn.Module] = []
        cin = stem
        for i, (w, d) in enumerate(zip(cfg.widths, cfg.depths, strict=True)):
            for j in range(d):
                blocks.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.embedding_size = cin
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cin, cfg.num_attributes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: starts as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) normalized images -> (N, E) embeddings (after global pooling)."""
        x = self.blocks(self.stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) normalized images -> (N, A) logits."""
        out: torch.Tensor = self.head(self.dropout(self.embed(x)))
        return out


def model_memory_format(cfg: ModelConfig, device: torch.device) -> torch.memory_format:
    """The memory format of a model of ``cfg`` and its inputs on ``device``
    (:func:`tlgan_base.devices.memory_format`: channels_last where it is fast and safe)."""
    return memory_format(device, min(cfg.widths))


def to_memory_format(model: AttributeNet, device: torch.device) -> AttributeNet:
    """Move the model's 4-D weights to :func:`model_memory_format` (channels_last where it is
    fast and safe)."""
    fmt = model_memory_format(model.cfg, device)
    out: AttributeNet = model.to(memory_format=fmt)  # type: ignore[call-overload]
    return out


@dataclass
class Normalization:
    """Per-channel mean/std (in [0, 1] units) applied after resizing."""

    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])

    def as_dict(self) -> dict[str, list[float]]:
        """JSON-ready description."""
        return {"mean": list(self.mean), "std": list(self.std)}


class Extractor:
    """A trained attribute model bound to a device.

    Attributes:
        attributes: attribute names (one probability each, in this order).
        input_size: the model's input resolution; other resolutions are resized to it.
        embedding_size: length of the penultimate embedding.
        name: registry name, or the weights folder for unregistered weights.
        sha256: sha256 of ``model.safetensors``.
        device: where the model runs.
        config: the weights' full ``config.json``.
        flip_tta: also embed each view's mirror image (test-time augmentation).
        tta_zooms: centre zooms embedded per image (1.0 = the whole image, 1.25 = its central
            80%); the embedding is the mean over all views (zooms x flips), so the head
            applied to it gives the mean logit. One view (1.0, no flip) is plain inference.
    """

    def __init__(
        self,
        model: AttributeNet,
        attributes: Sequence[str],
        normalization: Normalization,
        *,
        name: str,
        sha256: str,
        device: str | torch.device | None = "cpu",
        config: dict[str, Any] | None = None,
        flip_tta: bool = False,
        tta_zooms: Sequence[float] = (1.0,),
    ) -> None:
        if len(attributes) != model.cfg.num_attributes:
            raise ValueError(
                f"{len(attributes)} attribute names for a model with "
                f"{model.cfg.num_attributes} outputs"
            )
        self.device = resolve_device(device)
        self.model = to_memory_format(model.to(self.device).eval(), self.device)
        self._format = model_memory_format(model.cfg, self.device)
        self.attributes = list(attributes)
        self.input_size = model.cfg.input_size
        self.embedding_size = model.embedding_size
        self.name = name
        self.sha256 = sha256
        self.normalization = normalization
        self.config = dict(config or {})
        self.flip_tta = bool(flip_tta)
        zooms = tuple(float(z) for z in tta_zooms)
        if not zooms or min(zooms) < 1.0:
            raise ValueError(f"tta_zooms must be a non-empty list of zooms >= 1, got {zooms}")
        self.tta_zooms = zooms
        self._mean = torch.tensor(normalization.mean, dtype=torch.float32,
                                  device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(normalization.std, dtype=torch.float32,
                                 device=self.device).view(1, 3, 1, 1)

    def __repr__(self) -> str:
        return (f"Extractor(name={self.name!r}, attributes={len(self.attributes)}, "
                f"input_size={self.input_size}, device={self.device})")

    @property
    def views(self) -> int:
        """Forward passes per image (zooms x flips)."""
        return len(self.tta_zooms) * (2 if self.flip_tta else 1)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> normalized (V*N, 3, S, S) views, view-major."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected images as a (N, 3, H, W) tensor, got {tuple(x.shape)}")
        x = x.to(self.device, dtype=torch.float32)
        side = min(int(x.shape[-2]), int(x.shape[-1]))
        views = []
        for z in self.tta_zooms:
            v = x
            if z != 1.0:
                c = max(1, round(side / z))
                top, left = (int(x.shape[-2]) - c) // 2, (int(x.shape[-1]) - c) // 2
                v = x[..., top:top + c, left:left + c]
            views.append(resize_square(v, self.input_size))
        if self.flip_tta:
            views += [v.flip(3) for v in views]
        out = torch.cat(views) if len(views) > 1 else views[0]
        out = (out - self._mean) / self._std
        return out.contiguous(memory_format=self._format)

    def forward_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float (N, 3, H, W) images in [0, 1], any device and size -> (probs, embeddings).

        Non-square images are centre-cropped; the square is resized (antialiased) to
        :attr:`input_size`, then normalized. With test-time views (:attr:`tta_zooms`,
        :attr:`flip_tta`) the embedding is the mean over the views. Returns (N, A)
        probabilities and (N, E) embeddings on :attr:`device`. Gradients flow unless the
        caller disables them.
        """
        n = int(x.shape[0])
        emb = self.model.embed(self._prepare(x))
        if self.views > 1:
            emb = emb.view(self.views, n, -1).mean(0)
        probs = torch.sigmoid(self.model.head(emb))
        return probs, emb

    def _run(self, images: np.ndarray, batch_size: int,
             want_emb: bool) -> tuple[np.ndarray, np.ndarray | None]:
        arr = np.asarray(images)
        if arr.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got {arr.dtype}")
        if arr.ndim == 3 and arr.shape[-1] == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got shape {arr.shape}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        n = arr.shape[0]
        probs = np.empty((n, len(self.attributes)), dtype=np.float32)
        embs = np.empty((n, self.embedding_size), dtype=np.float32) if want_emb else None
        with torch.inference_mode():
            for s in range(0, n, batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(arr[s:s + batch_size]))
                x = chunk.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
                p, e = self.forward_tensor(x)
                probs[s:s + len(chunk)] = p.float().cpu().numpy()
                if embs is not None:
                    embs[s:s + len(chunk)] = e.float().cpu().numpy()
        return probs, embs

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 (N, H, W, 3) images -> (N, A) float32 probabilities (batched, no grad)."""
        return self._run(images, batch_size, want_emb=False)[0]

    def predict_with_embeddings(self, images: np.ndarray,
                                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """uint8 (N, H, W, 3) images -> ((N, A) probabilities, (N, E) embeddings), float32."""
        probs, embs = self._run(images, batch_size, want_emb=True)
        assert embs is not None
        return probs, embs
