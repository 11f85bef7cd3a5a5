"""The photo encoder's parts: network, inversion loss, refinement, PhotoEncoder, registry
checks; on tiny seeded models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tlgan.encoders.encoder_net import EncoderConfig, ImageEncoder
from tlgan.encoders.losses import (
    InversionLoss,
    LossWeights,
    embedding_distance,
    pixel_mse,
    psnr,
    shell_penalty,
)
from tlgan.encoders.photo_encoder import PhotoEncoder, encode_cost
from tlgan.encoders.refine import check_refine_args, refine
from tlgan.pipeline import Pipeline
from tlgan.testing import tiny_encoder, tiny_generator
from tlgan_base.artifact import ArtifactError
from tlgan_base.domain_errors import Stopped


def test_encoder_shapes_and_bad_input() -> None:
    net = ImageEncoder(EncoderConfig(latent_size=7, resolution=64, widths=(4, 8)))
    out = net(torch.rand(3, 3, 64, 64))
    assert out.shape == (3, 7)
    with pytest.raises(ValueError, match="images"):
        net(torch.rand(3, 3, 32, 32))
    with pytest.raises(ValueError, match="resolution"):
        EncoderConfig(resolution=60, widths=(4, 8, 8))
    with pytest.raises(ValueError, match="widths"):
        EncoderConfig(widths=())
    cfg = EncoderConfig(latent_size=9, resolution=32, widths=(2, 3))
    assert EncoderConfig.from_dict(cfg.as_dict()) == cfg


def test_loss_terms() -> None:
    z = torch.zeros(2, 100)
    z[0, 0] = 10.0  # |z| = sqrt(100): on the shell
    z[1, 0] = 5.0
    pen = shell_penalty(z)
    assert pen[0].item() == pytest.approx(0.0)
    assert pen[1].item() == pytest.approx(0.25)
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 0.1)
    assert pixel_mse(a, b).item() == pytest.approx(0.01)
    assert psnr(0.01) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="target"):
        pixel_mse(a, torch.zeros(1, 3, 2, 2))
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert embedding_distance(e, torch.tensor([[1.0, 0.0], [0.0, 1.0]])).tolist() == \
        pytest.approx([0.0, 1.0])
    for bad in (dict(perceptual=-1.0), dict(shell=math.nan)):
        with pytest.raises(ValueError, match="_weight"):
            LossWeights(**bad)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_loss(tiny_pipeline: Pipeline) -> InversionLoss:
    g = tiny_pipeline.generator
    return InversionLoss(g.module, tiny_pipeline.extractor, LossWeights(), g.value_range)


def _targets(pipeline: Pipeline, n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Faces the tiny generator can make exactly, and their embeddings."""
    z = pipeline.seeds_to_latents(range(100, 100 + n))
    x = pipeline.generator.render_tensor(z)
    assert pipeline.extractor is not None
    with torch.no_grad():
        _, emb = pipeline.extractor.forward_tensor(x)
    return x, emb


def test_refine_improves_keeps_the_best_and_is_reproducible(tiny_pipeline: Pipeline,
                                                            tiny_loss: InversionLoss) -> None:
    x, emb = _targets(tiny_pipeline)
    z0 = torch.zeros(3, tiny_pipeline.latent_size)
    with torch.no_grad():
        start = tiny_loss.terms(z0, x, emb)["total"]
    zero = refine(tiny_loss, x, emb, z0, 0)
    assert torch.equal(zero.z, z0) and zero.steps == 0
    r = refine(tiny_loss, x, emb, z0, 30, starts=3, seed=5)
    with torch.no_grad():
        end = tiny_loss.terms(r.z, x, emb)["total"]
    assert torch.allclose(end, r.loss, atol=1e-5)  # the loss reported is the z returned's
    assert (end < start * 0.8).all(), (start, end)  # refinement helps every photo
    again = refine(tiny_loss, x, emb, z0, 30, starts=3, seed=5)
    assert torch.equal(again.z, r.z)  # same photo, budget and seed: same z
    # best kept: a huge learning rate makes the last step worse, never the answer
    wild = refine(tiny_loss, x, emb, r.z, 3, starts=1, lr=50.0)
    assert (wild.loss <= r.loss + 1e-6).all()


def test_refine_stops_and_checks_arguments(tiny_pipeline: Pipeline,
                                           tiny_loss: InversionLoss) -> None:
    x, emb = _targets(tiny_pipeline, 1)
    z0 = torch.zeros(1, tiny_pipeline.latent_size)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Stopped):
        refine(tiny_loss, x, emb, z0, 10, should_stop=stop)
    assert len(calls) == 3  # asked before every step, stopped at the third
    for kwargs, name in ((dict(steps=-1), "steps"), (dict(steps=True), "steps"),
                         (dict(starts=0), "starts"), (dict(lr=0.0), "lr"),
                         (dict(jitter=-1.0), "jitter")):
        args = {"steps": 1, "starts": 1, "lr": 0.1, "jitter": 0.1, **kwargs}
        with pytest.raises(ValueError, match=f"^{name}:"):
            check_refine_args(**args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="z0"):
        refine(tiny_loss, x, emb, torch.zeros(2, tiny_pipeline.latent_size), 1)


def test_pipeline_encode_answers_latents_that_render_the_answered_face(
        tiny_pipeline: Pipeline) -> None:
    x, _ = _targets(tiny_pipeline, 2)
    photos = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    enc0 = tiny_pipeline.encode(photos, 0)
    enc = tiny_pipeline.encode(photos, 20)
    assert enc.latents.shape == (2, tiny_pipeline.latent_size)
    images, probs = tiny_pipeline.render_and_label(enc.latents[:1])
    assert np.array_equal(images[0], enc.images[0])  # what /edit renders for the latent
    assert probs is not None and enc.probs is not None
    assert np.allclose(probs[0], enc.probs[0], atol=1e-6)
    for q0, q in zip(enc0.quality, enc.quality, strict=True):
        assert set(q) == {"psnr", "embedding_cosine", "label_agreement"}
        assert q["psnr"] > q0["psnr"]  # refinement buys pixels over the (random) encoder
        assert -1.0 <= q["embedding_cosine"] <= 1.0 and 0.0 <= q["label_agreement"] <= 1.0
    with pytest.raises(ValueError, match=r"^image:"):
        tiny_pipeline.encode(photos[:, :32], 0)
    bare = Pipeline(generator=tiny_pipeline.generator)
    with pytest.raises(ValueError, match=r"^image: this service has no photo encoder"):
        bare.encode(photos, 0)


def test_photo_encoder_refuses_another_generator_and_counts_cost() -> None:
    gen = tiny_generator(0)
    other = tiny_generator(0, latent_size=8)
    net = tiny_encoder(gen).network
    with pytest.raises(ArtifactError, match="latents of size"):
        PhotoEncoder(net, other, name="x", sha256="0" * 64)
    assert encode_cost(1, 0) == 3.0
    assert encode_cost(2, 40, starts=4) == 2 * (3.0 + 3.0 * (0.25 * 40 * 4 + 0.75 * 40))
    assert encode_cost(1, 40, starts=1) == 3.0 + 3.0 * 40
