"""Fixtures of the generator-training tests (a tiny CelebA-format folder, a tiny trained run)
and of the local-edit tests (a tiny bundle with masks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from training_helpers import TINY

from tlgan.pipeline import Pipeline
from tlgan.testing import tiny_extractor
from tlgan.training.config import GeneratorTrainConfig
from tlgan.training.trainer import train


@pytest.fixture(scope="session")
def celeba_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 random 72x80 faces: 12 train (0), 1 val (1), 3 test (2), official layout."""
    root = tmp_path_factory.mktemp("celeba")
    (root / "img_align_celeba").mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(16):
        img = rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "img_align_celeba" / f"{i:06d}.jpg", quality=95)
        lines.append(f"{i:06d}.jpg {0 if i < 12 else 1 if i < 13 else 2}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def trained(celeba_fixture: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train") / "tiny-dcgan"
    train(GeneratorTrainConfig(data=str(celeba_fixture), out=str(out), iterations=4, **TINY),  # type: ignore[arg-type]
          extractor=tiny_extractor(), log=lambda m: None)
    return out


@pytest.fixture(scope="module")
def local(tiny_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Pipeline, Path]:
    """A tiny pipeline whose bundle ships local-edit masks, and the bundle's folder."""
    from axes.bundle_attach import attach_masks
    from tlgan.pipeline.locality import learn_masks
    from tlgan.testing import tiny_bundle_with_samples

    folder = tmp_path_factory.mktemp("bundle") / "b"
    p = tiny_bundle_with_samples(tiny_pipeline, folder, n=200)
    masks, meta = learn_masks(p, faces=32, global_area=1.0)  # random faces: wide masks
    bundle = attach_masks(folder, masks, meta)
    return Pipeline(generator=p.generator, extractor=p.extractor, bundle=bundle), folder
