"""Tiny seeded models for fast tests (generator, extractor, axes), shared by all test suites.

These are real (randomly initialised, seeded) torch modules wired through the same classes as
production; only their size differs. Nothing here is imported by production code.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from axes.bundle import AxisBundle, build_bundle
from axes.bundle_attach import attach_samples
from axes.fitting import fit_axes
from axes.samples import SampleCache
from feature_extractor.model import AttributeNet, Extractor, ModelConfig, Normalization
from tlgan.critic.critic import Critic
from tlgan.critic.critic_net import CriticConfig, CriticNet
from tlgan.encoders.encoder_net import EncoderConfig, ImageEncoder
from tlgan.encoders.photo_encoder import PhotoEncoder
from tlgan.generators.base import FaceGenerator
from tlgan.generators.dcgan import DCGANGenerator
from tlgan.latents import LatentSpace
from tlgan.photos.faces import CELEBA_EYES, Detection
from tlgan.pipeline import Pipeline
from tlgan.upscale.sr_net import SRConfig, SRNet
from tlgan.upscale.upscaler import Upscaler

TINY_ATTRIBUTES = ["Eyeglasses", "Male", "Smiling", "Young", "Blond_Hair"]
TINY_LATENT = 16
TINY_W = 12


def tiny_generator(seed: int = 0, latent_size: int = TINY_LATENT, max_batch: int = 64
                   ) -> FaceGenerator:
    """A seeded random DCGAN (64x64) small enough to render thousands of faces per second."""
    torch.manual_seed(seed)
    module = DCGANGenerator(nz=latent_size, ngf=4)
    # Randomise BatchNorm statistics so outputs are not flat.
    for m in module.modules():
        if isinstance(m, nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.25)
        if isinstance(m, nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return FaceGenerator(module=module, name="tiny-dcgan", latent_size=latent_size,
                         resolution=64, sha256="0" * 64, max_batch=max_batch)


class MappedGenerator(nn.Module):
    """A StyleGAN-like generator: z -> ``mapping`` -> w -> ``synthesis`` -> images."""

    def __init__(self, mapping: nn.Module, synthesis: nn.Module) -> None:
        super().__init__()
        self.mapping = mapping
        self.synthesis = synthesis

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.synthesis(self.mapping(z))
        return out


def tiny_mapped_generator(seed: int = 0, latent_size: int = TINY_LATENT, w_size: int = TINY_W,
                          max_batch: int = 64) -> FaceGenerator:
    """A seeded tiny generator with a mapping network: declares the spaces z and w (a small
    MLP z -> w, then the tiny DCGAN on w)."""
    synthesis = tiny_generator(seed, w_size, max_batch).module
    torch.manual_seed(seed + 100)
    last = nn.Linear(32, w_size)
    with torch.no_grad():  # w of roughly unit spread, as the synthesis DCGAN expects
        last.weight.mul_(4.5)
    mapping = nn.Sequential(nn.Linear(latent_size, 32), nn.LeakyReLU(0.2), last)
    return FaceGenerator(module=MappedGenerator(mapping, synthesis), name="tiny-mapped",
                         latent_size=latent_size, resolution=64, sha256="2" * 64,
                         max_batch=max_batch, mapping=mapping, synthesis=synthesis,
                         w_size=w_size)


def tiny_gaussian_prior(seed: int = 0, latent_size: int = TINY_LATENT) -> LatentSpace:
    """A seeded non-standard Gaussian prior for z: a shifted mean and a correlated,
    unequal-variance covariance (what an autoencoder's latent distribution looks like)."""
    rng = np.random.default_rng(seed + 7)
    mean = rng.normal(0.0, 0.5, latent_size)
    a = rng.normal(0.0, 1.0, (latent_size, latent_size)) / np.sqrt(latent_size)
    cov = a @ a.T + 0.1 * np.eye(latent_size)
    return LatentSpace("z", latent_size, mean=mean, cov=cov)


def tiny_gaussian_generator(seed: int = 0, latent_size: int = TINY_LATENT,
                            max_batch: int = 64) -> FaceGenerator:
    """The tiny DCGAN declaring the prior :func:`tiny_gaussian_prior` (an AE-like decoder)."""
    gen = tiny_generator(seed, latent_size, max_batch)
    return FaceGenerator(module=gen.module, name="tiny-gaussian", latent_size=latent_size,
                         resolution=64, sha256="3" * 64, max_batch=max_batch,
                         prior=tiny_gaussian_prior(seed, latent_size))


def tiny_extractor(seed: int = 0, attributes: list[str] | None = None) -> Extractor:
    """A seeded random extractor of the production class (AttributeNet, 64 px, widths 8/16)."""
    attrs = list(attributes or TINY_ATTRIBUTES)
    torch.manual_seed(seed)
    cfg = ModelConfig(num_attributes=len(attrs), input_size=64, widths=(8, 16), depths=(1, 1),
                      dropout=0.0)
    net = AttributeNet(cfg)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
    return Extractor(net.eval(), attrs, Normalization(), name="tiny-extractor",
                     sha256="1" * 64, device="cpu")


def calibrate_extractor(extractor: Extractor, images: torch.Tensor, gain: float = 2.0) -> None:
    """Rescale the extractor's head so its logits on ``images`` have mean 0 and std ``gain``
    per attribute: random nets otherwise give nearly constant probabilities."""
    with torch.inference_mode():
        _, emb = extractor.forward_tensor(images)
        head = extractor.model.head
        logits = head(emb)
        mu, sd = logits.mean(0), logits.std(0).clamp_min(1e-6)
        head.weight.mul_((gain / sd)[:, None])
        head.bias.sub_(mu).mul_(gain / sd)


def tiny_bundle(generator: FaceGenerator, extractor: Extractor, n: int = 3000,
                seed: int = 0, space: str = "z") -> AxisBundle:
    """Axes really fitted (GLM, orthogonalized against Male and Young) on ``n`` tiny samples
    of the generator's latent space ``space``."""
    z = generator.sample_latents(range(seed, seed + n), space=space)
    with torch.inference_mode():
        probs, _ = extractor.forward_tensor(generator.render_tensor(z, space))
    fit = fit_axes(z, probs.numpy(), extractor.attributes, seed=seed, n_jobs=1)
    return build_bundle(fit, ["Male", "Young"], {
        "generator": generator.name, "generator_sha256": generator.sha256,
        "extractor": extractor.name, "extractor_sha256": extractor.sha256,
    }, latent_space=space)


def tiny_encoder(generator: FaceGenerator, seed: int = 0) -> PhotoEncoder:
    """A seeded random photo encoder (the production class, widths 4/8/8/8) for
    ``generator``."""
    torch.manual_seed(seed)
    net = ImageEncoder(EncoderConfig(generator.latent_size, generator.resolution, (4, 8, 8, 8)))
    return PhotoEncoder(net, generator, name="tiny-encoder", sha256="0" * 64)


class ScaledCriticNet(CriticNet):
    """A :class:`CriticNet` whose logits are multiplied by ``gain`` (a random net's scores
    barely differ from face to face; code that acts on score drops needs some that do)."""

    def __init__(self, cfg: CriticConfig, gain: float) -> None:
        super().__init__(cfg)
        self.gain = gain

    def forward_signed(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward_signed(x) * self.gain


def tiny_critic(generator: FaceGenerator, seed: int = 0, gain: float = 1.0) -> Critic:
    """A seeded random realism critic (the production class, width 4) for ``generator``;
    ``gain`` scales its logits (:class:`ScaledCriticNet`)."""
    torch.manual_seed(seed)
    cfg = CriticConfig(resolution=generator.resolution, width=4)
    net = CriticNet(cfg) if gain == 1.0 else ScaledCriticNet(cfg, gain)
    return Critic(net, name="tiny-critic", sha256="4" * 64,
                  generator_sha256=generator.sha256, device=generator.device,
                  generator=generator)


def tiny_upscaler(seed: int = 0) -> Upscaler:
    """A seeded random face upscaler (the production classes, 4 channels, 1 block), its
    output layer randomised too so that it differs from plain bicubic."""
    torch.manual_seed(seed)
    net = SRNet(SRConfig(scale=2, channels=4, blocks=1))
    nn.init.normal_(net.to_pixels.weight, 0.0, 0.05)
    return Upscaler(net, name="tiny-upscaler", sha256="0" * 64)


def tiny_pipeline(seed: int = 0) -> Pipeline:
    """A full pipeline of tiny seeded models (with a tiny photo encoder and upscaler)."""
    gen = tiny_generator(seed)
    ext = tiny_extractor(seed)
    rng = np.random.default_rng(seed + 1)
    calibrate_extractor(ext, gen.render_tensor(rng.standard_normal((128, gen.latent_size))
                                               .astype(np.float32)))
    return Pipeline(generator=gen, extractor=ext, bundle=tiny_bundle(gen, ext, seed=seed),
                    encoder=tiny_encoder(gen, seed), upscaler=tiny_upscaler(seed))


def tiny_bundle_with_samples(pipeline: Pipeline, folder: Any, n: int = 1500,
                             seed: int = 0) -> Pipeline:
    """Save ``pipeline``'s bundle to ``folder`` with ``n`` shipped samples (seeds
    ``seed..``, labelled by its extractor) and return a pipeline that loads it from there
    (as the shipped bundles are: ``tlgan axes teach`` and ``POST /axes/fit`` work)."""
    assert pipeline.bundle is not None and pipeline.extractor is not None
    folder = Path(folder)
    pipeline.bundle.save(folder)
    z = pipeline.seeds_to_latents(range(seed, seed + n))
    with torch.inference_mode():
        probs, emb = pipeline.extractor.forward_tensor(pipeline.generator.render_tensor(z))
    cache = SampleCache(z=z, probs=probs.numpy(), embeddings=emb.numpy().astype(np.float16),
                        attributes=list(pipeline.extractor.attributes),
                        config={"generator": pipeline.generator.name, "seed": seed,
                                "extractor": pipeline.extractor.name, "truncation": 1.0})
    bundle = attach_samples(folder, cache, n, source="tiny samples")
    return Pipeline(generator=pipeline.generator, extractor=pipeline.extractor, bundle=bundle)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI ``app`` with uvicorn on a free loopback port (in a thread); yield its base
    URL. Afterwards, the app must not have answered any request with its catch-all 500."""
    import uvicorn  # lazy: only tests that serve over HTTP need the server

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    assert getattr(app.state, "server_errors", 0) == 0, \
        "a request reached the catch-all 500 handler"


class CentredFaceDetector:
    """A fake face detector for tests: one face, framed as the photo's centre square (so the
    photo is taken as an aligned crop already), score 1."""

    def detect(self, photo: np.ndarray) -> list[Detection]:
        h, w = photo.shape[:2]
        s = min(w, h)
        left, top = (w - s) / 2, (h - s) / 2
        eyes = CELEBA_EYES * s + np.array([left, top])
        return [Detection(box=(left, top, left + s, top + s), score=1.0, eyes=eyes)]
