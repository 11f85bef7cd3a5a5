"""An upscaler ready to use: the super-resolution network with its provenance.

``Upscaler.upscale`` takes uint8 faces (N, H, W, 3) and returns them at ``scale`` times the
pixels, uint8 (N, scale*H, scale*W, 3). It runs under ``torch.inference_mode`` in batches
and is deterministic for a given input (same bytes run to run on one machine).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from tlgan.upscale import MIN_SIZE
from tlgan.upscale.sr_net import ARCHITECTURE, KIND, WEIGHTS_FILE, SRConfig, SRNet, count_parameters
from tlgan_base import trainloop

#: the model work of upscaling one 64 px face, in face-passes (the batcher's unit: render and
#: label one face): about 33 ms against 8-16 ms on one torch thread (48 channels, 6 blocks)
UPSCALE_PASSES = 4.0


def to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """Float images (N, 3, H, W), nominally in [0, 1] -> uint8 (N, H, W, 3), clamped and
    rounded."""
    with torch.inference_mode():
        u8 = (x.detach() * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        return u8.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def check_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Return ``images`` if it is uint8 (N, H, W, 3), else raise ValueError naming ``name``."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
            or images.shape[-1] != 3:
        shape = getattr(images, "shape", None)
        raise ValueError(f"{name}: expected uint8 (N, H, W, 3), got "
                         f"{getattr(images, 'dtype', type(images).__name__)} {shape}")
    return images


def lanczos_upscale(images: np.ndarray, scale: int) -> np.ndarray:
    """The baseline: each uint8 image (N, H, W, 3) resized ``scale`` times with Lanczos."""
    check_images(images)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale: must be a positive integer, got {scale!r}")
    n, h, w, _ = images.shape
    out = np.empty((n, h * scale, w * scale, 3), np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img, "RGB").resize((w * scale, h * scale),
                                                               Image.Resampling.LANCZOS))
    return out


class Upscaler:
    """A trained :class:`SRNet` on a device.

    Args:
        network: the network (put in eval mode, parameters frozen).
        name: registry name or weights folder.
        sha256: sha256 of the weights file.
        config: the weights folder's config.json (provenance).
        device: where it runs.
        max_batch: the most faces per forward pass.
    """

    def __init__(self, network: SRNet, *, name: str, sha256: str,
                 config: dict[str, Any] | None = None,
                 device: str | torch.device = "cpu", max_batch: int = 16) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: must be >= 1, got {max_batch}")
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.name = name
        self.sha256 = sha256
        self.config = config or {}
        self.max_batch = max_batch

    @property
    def scale(self) -> int:
        """The upscaling factor."""
        return self.network.cfg.scale

    def upscale(self, images: np.ndarray) -> np.ndarray:
        """uint8 faces (N, H, W, 3) -> uint8 (N, scale*H, scale*W, 3).

        Raises:
            ValueError: ``images`` is not uint8 (N, H, W, 3).
        """
        check_images(images)
        n, h, w, _ = images.shape
        if n == 0:
            return np.zeros((0, h * self.scale, w * self.scale, 3), np.uint8)
        outs = []
        with torch.inference_mode():
            for s in range(0, n, self.max_batch):
                # a copy: answers' faces may be read-only views, which torch cannot wrap safely
                x = torch.tensor(images[s:s + self.max_batch])
                x = x.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
                outs.append(to_uint8_images(self.network(x)))
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for ``tlgan info`` and the API's model listing)."""
        metrics = self.config.get("metrics", {})
        return {"name": self.name, "sha256": self.sha256, "scale": self.scale,
                "architecture": ARCHITECTURE, "config": self.network.cfg.as_dict(),
                "parameters": count_parameters(self.network), "device": str(self.device),
                "metrics": dict(metrics),
                "degradations": sorted(self.config.get("degradations", {}))}

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str], *, name: str | None = None,
                    device: str | torch.device = "cpu") -> Upscaler:
        """Load a folder written by ``tlgan sr train`` (``upscaler.safetensors`` +
        ``config.json``, every file checked against the sha256 it records).

        Raises:
            ArtifactError: missing or corrupt files, or an invalid config.
        """
        folder = Path(folder)
        config, cfg = trainloop.read_model_config(
            folder, KIND, WEIGHTS_FILE, ARCHITECTURE, "upscaler",
            lambda c: SRConfig.from_dict(c["architecture"]["config"]))
        network = SRNet(cfg)
        trainloop.load_weights_into(network, folder / WEIGHTS_FILE, "upscaler")
        return cls(network, name=name or str(folder), sha256=str(config["files"][WEIGHTS_FILE]),
                   config=config, device=device)


def for_size(upscaler: Upscaler | None, images: np.ndarray, size: int | None) -> np.ndarray:
    """The faces to encode at ``size`` px: passed once through ``upscaler`` when there is
    one, ``size`` is at least :data:`~tlgan.upscale.MIN_SIZE` and larger than the faces
    (the encoder then resizes the upscaled faces to ``size`` with Lanczos); otherwise
    ``images`` itself.

    Raises:
        ValueError: ``images`` is not uint8 (N, H, W, 3).
    """
    check_images(images)
    if not wants_upscale(upscaler, int(images.shape[1]), size):
        return images
    assert upscaler is not None
    return upscaler.upscale(images)


def wants_upscale(upscaler: Upscaler | None, side: int, size: int | None) -> bool:
    """Whether faces of ``side`` px asked for at ``size`` px pass through ``upscaler``."""
    return upscaler is not None and size is not None and size >= MIN_SIZE and size > side
