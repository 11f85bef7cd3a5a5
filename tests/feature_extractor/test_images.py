"""feature_extractor.celeba_images: decoding, centre-cropping and caching the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from extractor_helpers import N_IMAGES

from feature_extractor.celeba_images import image_cache, load_images
from feature_extractor.celeba_index import CelebaError, read_celeba
from tlgan_base.image_codec import load_image


def test_unreadable_image_names_image_and_line(celeba_tiny: Path) -> None:
    (celeba_tiny / "img_align_celeba" / "000004.jpg").write_bytes(b"not a jpeg")
    idx = read_celeba(celeba_tiny)
    with pytest.raises(CelebaError, match=r"line 6: image .*000004\.jpg cannot be read"):
        load_images(idx, np.arange(len(idx)), 16)
    imgs, ok = load_images(idx, np.arange(len(idx)), 16, skip_bad=True, report=lambda m: None)
    assert imgs.shape == (N_IMAGES - 1, 16, 16, 3) and 3 not in ok


def test_images_center_cropped_and_cached(celeba_tiny: Path, tmp_path: Path) -> None:
    img = load_image(celeba_tiny / "img_align_celeba" / "000001.jpg")
    assert img.shape == (36, 36, 3) and img.dtype == np.uint8  # 36x44 -> square crop
    idx = read_celeba(celeba_tiny)
    a, rows = image_cache(idx, 64, cache_dir=tmp_path / "cache")
    assert a.shape == (N_IMAGES, 64, 64, 3) and len(list((tmp_path / "cache").iterdir())) == 2
    b, _ = image_cache(idx, 64, cache_dir=tmp_path / "cache")
    assert np.array_equal(a, b) and np.array_equal(rows, np.arange(N_IMAGES))
