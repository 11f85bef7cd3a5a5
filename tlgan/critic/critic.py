"""A realism critic ready to use: the network bound to the generator it was trained for.

:class:`Critic` satisfies ``tlgan_base.protocols.RealismScorer``: one logit per face, higher
= more realistic; ``score_tensor`` is differentiable, ``score`` takes uint8 faces. Bound to
its generator it is also a ``LatentRealismScorer`` (``score_latents`` renders the latents).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tlgan.critic.critic_net import ARCHITECTURE, KIND, WEIGHTS_FILE, CriticConfig, CriticNet
from tlgan.latents import DEFAULT_SPACE
from tlgan.tied_weights import TiedModel, check_generator
from tlgan_base import trainloop

if TYPE_CHECKING:
    from tlgan.generators.base import FaceGenerator

#: faces scored at once by :meth:`Critic.score`
SCORE_BATCH = 256


class Critic(TiedModel):
    """A :class:`CriticNet` (frozen, eval mode) on a device, tied to one generator's sha256.

    Args:
        network: the trained network.
        name, sha256: registry name or folder; sha256 of the weights file.
        generator_sha256: the sha256 of the generator it was trained against.
        device: where it runs (the generator's).
        config: the weights folder's config.json (provenance).
        generator: the generator whose latents ``score_latents`` renders (None: latents
            cannot be scored, only images).
    """

    def __init__(self, network: CriticNet, *, name: str, sha256: str, generator_sha256: str,
                 device: torch.device | str = "cpu",
                 config: dict[str, Any] | None = None,
                 generator: FaceGenerator | None = None) -> None:
        self.network = network.to(device).eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.device = torch.device(device)
        super().__init__(name, sha256, config)
        self._generator_sha256 = generator_sha256
        self.generator = generator

    @property
    def resolution(self) -> int:
        return self.network.cfg.resolution

    @property
    def generator_sha256(self) -> str:
        return self._generator_sha256

    @classmethod
    def from_folder(cls, folder: str | Path, generator_sha256: str | None = None, *,
                    device: torch.device | str = "cpu", name: str | None = None,
                    generator: FaceGenerator | None = None) -> Critic:
        """Load a folder written by ``tlgan critic train``.

        Args:
            folder: the weights folder (``critic.safetensors`` + ``config.json``).
            generator_sha256: when given, the sha256 of the generator it must have been
                trained for.
            device: where it runs.
            name: its name (default: the folder).
            generator: the generator whose latents it scores (see :class:`Critic`).

        Raises:
            ArtifactError: missing/corrupt files, or trained for another generator.
        """
        folder = Path(folder)
        config, (cfg, gen_info, gen_sha) = trainloop.read_model_config(
            folder, KIND, WEIGHTS_FILE, ARCHITECTURE, "critic",
            lambda c: (CriticConfig.from_dict(c["architecture"]["config"]), c["generator"],
                       str(c["generator"]["sha256"])))
        name = name or str(folder)
        if generator_sha256 is not None:
            check_generator("critic", name, gen_info, generator_sha256, "tlgan critic train")
        network = CriticNet(cfg)
        trainloop.load_weights_into(network, folder / WEIGHTS_FILE, "critic")
        return cls(network, name=name, sha256=str(config["files"][WEIGHTS_FILE]),
                   generator_sha256=gen_sha, device=device, config=config,
                   generator=generator)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for ``tlgan info`` and ``GET /generators``)."""
        return {"name": self.name, "sha256": self.sha256, "kind": KIND,
                "generator_sha256": self.generator_sha256, "resolution": self.resolution,
                "metrics": self.config.get("metrics", {})}

    def score_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """Realism logits (N,) of float images (N, 3, R, R) in [0, 1] on the critic's device;
        differentiable with respect to ``images``.

        Raises:
            ValueError: ``images`` has the wrong shape (named ``images``).
        """
        out: torch.Tensor = self.network(images)
        return out

    def score(self, images: np.ndarray) -> np.ndarray:
        """Realism logits float64 (N,) of uint8 faces (N, R, R, 3).

        Raises:
            ValueError: not uint8 faces at the critic's resolution (named ``images``).
        """
        r = self.resolution
        arr = np.asarray(images)
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (r, r, 3):
            raise ValueError(f"images: expected uint8 faces (N, {r}, {r}, 3), got "
                             f"{arr.dtype} {arr.shape}")
        outs = []
        with torch.inference_mode():
            for s in range(0, len(arr), SCORE_BATCH):
                x = torch.from_numpy(np.ascontiguousarray(arr[s:s + SCORE_BATCH])) \
                    .to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
                outs.append(self.network(x).double().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros(0, np.float64)

    def _bound(self) -> FaceGenerator:
        if self.generator is None:
            raise ValueError(f"z: critic {self.name!r} is bound to no generator, so it cannot "
                             "score latents (load it with load_critic)")
        return self.generator

    def score_latents(self, z: np.ndarray, space: str = DEFAULT_SPACE) -> np.ndarray:
        """Realism logits float64 (N,) of latents z (N, L) of ``space``: their faces
        rendered by the generator (uint8, as shown) and scored by :meth:`score`.

        Raises:
            ValueError: no generator bound, or bad z or space (named).
        """
        return self.score(self._bound().render(z, space))

    def score_latents_tensor(self, z: torch.Tensor, space: str = DEFAULT_SPACE
                             ) -> torch.Tensor:
        """Realism logits (N,) of latents z (N, L) of ``space`` on the generator's device,
        differentiable in z (the faces rendered with gradient, then :meth:`score_tensor`).

        Raises:
            ValueError: no generator bound, or bad z or space (named).
        """
        gen = self._bound()
        gen.check_latents(z, space=space)
        module = gen.module if space == DEFAULT_SPACE else gen.synthesis
        assert module is not None
        x = z[:, :, None, None] if gen.spatial_latent and space == DEFAULT_SPACE else z
        lo, hi = gen.value_range
        return self.score_tensor(((module(x) - lo) / (hi - lo)).clamp(0.0, 1.0))
