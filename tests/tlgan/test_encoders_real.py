"""The registered photo encoders against the models they were trained for (torchvision's
weights-API check), and the shipped encoder on CelebA test photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tlgan.encoders import DEFAULT_STEPS
from tlgan.encoders.encoder_weights import ENCODERS, load_encoder, registered_for
from tlgan.generators import GENERATORS, load_generator
from tlgan_base.artifact import ArtifactError

pytestmark = pytest.mark.real_weights


def test_the_default_generator_has_a_registered_encoder() -> None:
    gen = load_generator(None)
    entry = registered_for(gen)
    assert entry is not None and entry.generator == gen.name


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_registered_encoder_loads_for_its_generator(name: str) -> None:
    entry = ENCODERS[name]
    assert entry.generator_sha256 == GENERATORS[entry.generator].sha256
    gen = load_generator(entry.generator)
    enc = load_encoder(name, gen)
    assert enc is not None and enc.sha256 == entry.sha256
    assert enc.config["generator"]["sha256"] == gen.sha256
    assert enc.network.cfg.latent_size == gen.latent_size
    assert enc.network.cfg.resolution == gen.resolution
    assert set(enc.config["metrics"]) >= {"val_psnr", "val_cosine", "val_agreement"}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_an_encoder_refuses_another_generator(name: str) -> None:
    others = [g for g in GENERATORS if g != ENCODERS[name].generator]
    gen = load_generator(others[0])
    with pytest.raises(ArtifactError, match="was trained for generator"):
        load_encoder(name, gen)
    assert registered_for(gen) is None or registered_for(gen) is not ENCODERS[name]


@pytest.mark.slow
def test_the_shipped_encoder_reconstructs_unseen_celeba_photos(celeba: Path) -> None:
    from tlgan.assembly import load_pipeline
    from tlgan_base.image_codec import read_photo

    pipeline = load_pipeline(bundle="none")
    lines = (celeba / "list_eval_partition.txt").read_text().splitlines()
    names = [a for a, b in (ln.split() for ln in lines if ln.strip()) if b == "2"][::150][:8]
    photos = np.stack([read_photo(celeba / "img_align_celeba" / n, 64) for n in names])
    alone = pipeline.encode(photos, 0)
    refined = pipeline.encode(photos, DEFAULT_STEPS)

    def mean(result: object, key: str) -> float:
        return float(np.mean([q[key] for q in result.quality]))  # type: ignore[attr-defined]

    assert mean(alone, "psnr") > 15.0
    assert mean(refined, "psnr") > mean(alone, "psnr") + 1.0
    assert mean(refined, "psnr") > 18.0
    assert mean(refined, "label_agreement") > 0.9
    assert mean(refined, "embedding_cosine") > 0.9
