"""A photo encoder ready to use: the network, the generator it serves and the inversion loss.

``PhotoEncoder.encode`` takes face photos already framed like CelebA's aligned crops
(square, at the generator's resolution) and returns latents whose renderings resemble them,
with the quality of each reconstruction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlgan.encoders import DEFAULT_STARTS
from tlgan.encoders.encoder_net import ARCHITECTURE, KIND, WEIGHTS_FILE, EncoderConfig, ImageEncoder
from tlgan.encoders.losses import Embedder, InversionLoss, LossWeights, psnr
from tlgan.encoders.refine import refine
from tlgan.generators.base import FaceGenerator, to_uint8
from tlgan_base import trainloop
from tlgan_base.artifact import ArtifactError

#: face-passes (render + label, forward) one refinement step of one start costs: forward,
#: then backward through the generator and the extractor (about twice the forward)
PASSES_PER_STEP = 3.0


def encode_cost(photos: int, steps: int, starts: int = DEFAULT_STARTS) -> float:
    """Model work of encoding ``photos`` with ``steps`` refinement steps, in face-passes
    (the batcher's unit): the encoder and the scoring passes, plus each step's starts
    (all of them for the first quarter of the steps, one after)."""
    step_starts = 0.25 * steps * starts + 0.75 * steps if starts > 1 else steps
    return photos * (3.0 + PASSES_PER_STEP * step_starts)


@dataclass
class Encoded:
    """Photos encoded: latents z (N, L) float32, reconstructions uint8 (N, R, R, 3), their
    labels (N, A) or None, and the quality of each reconstruction."""

    z: np.ndarray
    images: np.ndarray
    probs: np.ndarray | None
    quality: list[dict[str, float]]
    steps: int


class PhotoEncoder:
    """An :class:`ImageEncoder` bound to the generator it was trained for.

    Args:
        network: the trained encoder.
        generator: the generator (its sha256 must be ``generator_sha256``).
        name, sha256: registry name or folder; sha256 of the weights file.
        weights: the inversion loss's weights for refinement.
        config: the weights folder's config.json (provenance).
    """

    def __init__(self, network: ImageEncoder, generator: FaceGenerator, *, name: str,
                 sha256: str, weights: LossWeights | None = None,
                 config: dict[str, Any] | None = None) -> None:
        if network.cfg.latent_size != generator.latent_size or \
                network.cfg.resolution != generator.resolution:
            raise ArtifactError(
                f"encoder {name!r}: made for latents of size {network.cfg.latent_size} at "
                f"{network.cfg.resolution}px, generator {generator.name!r} has "
                f"{generator.latent_size} at {generator.resolution}px")
        self.network = network.to(generator.device).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.generator = generator
        self.name = name
        self.sha256 = sha256
        self.weights = weights or LossWeights()
        self.config = config or {}

    @property
    def resolution(self) -> int:
        return self.generator.resolution

    @classmethod
    def from_folder(cls, folder: Path, generator: FaceGenerator, *, name: str | None = None
                    ) -> PhotoEncoder:
        """Load a folder written by ``tlgan encoder train`` for ``generator`` (it runs on the
        generator's device).

        Raises:
            ArtifactError: missing/corrupt files, or trained for another generator.
        """
        config, (cfg, gen_info, gen_sha, weights) = trainloop.read_model_config(
            folder, KIND, WEIGHTS_FILE, ARCHITECTURE, "encoder",
            lambda c: (EncoderConfig.from_dict(c["architecture"]["config"]), c["generator"],
                       str(c["generator"]["sha256"]), LossWeights(**c.get("loss_weights", {}))))
        name = name or str(folder)
        if gen_sha != generator.sha256:
            raise ArtifactError(
                f"encoder {name!r} was trained for generator {gen_info.get('name')!r} "
                f"(sha256 {gen_sha[:12]}...), not for {generator.name!r} (sha256 "
                f"{generator.sha256[:12]}...): train one for it with `tlgan encoder train "
                f"--generator {generator.name}`")
        network = ImageEncoder(cfg)
        trainloop.load_weights_into(network, folder / WEIGHTS_FILE, "encoder")
        return cls(network, generator, name=name, sha256=str(config["files"][WEIGHTS_FILE]),
                   weights=weights, config=config)

    def describe(self) -> dict[str, Any]:
        metrics = self.config.get("metrics", {})
        return {"name": self.name, "sha256": self.sha256,
                "generator_sha256": self.generator.sha256, "resolution": self.resolution,
                "loss_weights": self.weights.as_dict(), "metrics": metrics}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder's last feature map (N, C, S, S) of images (N, 3, R, R) in [0, 1]
        (before its linear head; differentiable in the images)."""
        out: torch.Tensor = self.network.features(images * 2.0 - 1.0)
        return out

    def loss(self, extractor: Embedder | None) -> InversionLoss:
        g = self.generator
        return InversionLoss(g.module, extractor, self.weights, g.value_range,
                             g.spatial_latent)

    def encode(self, photos: np.ndarray, extractor: Any | None, steps: int, *,
               starts: int = DEFAULT_STARTS, seed: int = 0,
               should_stop: Callable[[], bool] | None = None) -> Encoded:
        """Encode uint8 photos (N, R, R, 3) at the generator's resolution.

        ``extractor`` (a ``feature_extractor.model.Extractor``, or None) gives the
        perceptual term and the labels; ``steps`` refinement steps follow the encoder
        (0: the encoder alone).

        Raises:
            ValueError: bad photos (named ``image``) or arguments.
            tlgan_base.domain_errors.Stopped: ``should_stop`` returned True.
        """
        r = self.resolution
        arr = np.asarray(photos)
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (r, r, 3):
            raise ValueError(f"image: expected uint8 photos (N, {r}, {r}, 3), got "
                             f"{arr.dtype} {arr.shape}")
        device = self.generator.device
        x = torch.from_numpy(np.require(arr, requirements=["C", "W"])).to(device) \
            .permute(0, 3, 1, 2).float().div_(255.0)
        loss = self.loss(extractor)
        probs_t = emb = None
        with torch.no_grad():
            if extractor is not None:
                probs_t, emb = extractor.forward_tensor(x)
            z0 = self.network(x)
        result = refine(loss, x, emb, z0, steps, starts=starts, seed=seed,
                        should_stop=should_stop)
        with torch.no_grad():
            rec = loss.render(result.z).clamp_(0.0, 1.0)
            images = to_uint8(rec)
            # score the image answered (rounded to uint8), as a client will see it
            shown = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 255.0
            mse = ((shown - x) ** 2).flatten(1).mean(1)
            quality = [{"psnr": round(float(psnr(float(m))), 3)} for m in mse.tolist()]
            out_probs = None
            if extractor is not None and emb is not None and probs_t is not None:
                rp, re = extractor.forward_tensor(shown)
                cos = torch.nn.functional.cosine_similarity(re, emb, dim=1)
                agree = ((rp > 0.5) == (probs_t > 0.5)).float().mean(1)
                for q, c, a in zip(quality, cos.tolist(), agree.tolist(), strict=True):
                    q["embedding_cosine"] = round(float(c), 4)
                    q["label_agreement"] = round(float(a), 4)
                out_probs = rp.float().cpu().numpy()
        return Encoded(z=result.z.float().cpu().numpy(), images=images, probs=out_probs,
                       quality=quality, steps=steps)
