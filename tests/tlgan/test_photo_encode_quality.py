"""Already aligned crops (the subset's) encode as well through face finding as they did when
the photo was only centre-cropped: the default models, a few test crops, the encoder alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tlgan.photos.faces import HaarFaceDetector
from tlgan.photos.prepare import align_photo
from tlgan_base.image_codec import read_photo

pytestmark = [pytest.mark.real_weights, pytest.mark.slow]


def test_aligned_crops_encode_as_well_as_before(celeba: Path) -> None:
    from tlgan.assembly import load_pipeline

    pipe = load_pipeline(bundle="none", device="cpu")
    names = ["182638.jpg", "182640.jpg", "182645.jpg", "182650.jpg", "182660.jpg",
             "182670.jpg"]
    paths = [celeba / "img_align_celeba" / n for n in names if
             (celeba / "img_align_celeba" / n).is_file()]
    assert len(paths) >= 4
    r = pipe.resolution
    before = np.stack([read_photo(p, r) for p in paths])
    det = HaarFaceDetector()
    after = np.stack([align_photo(p, det, r).aligned for p in paths])
    q0 = pipe.encode(before, 0).quality
    q1 = pipe.encode(after, 0).quality
    psnr0 = np.mean([q["psnr"] for q in q0])
    psnr1 = np.mean([q["psnr"] for q in q1])
    agree0 = np.mean([q["label_agreement"] for q in q0])
    agree1 = np.mean([q["label_agreement"] for q in q1])
    assert psnr1 >= psnr0 - 0.5, (psnr0, psnr1)
    assert agree1 >= agree0 - 0.02, (agree0, agree1)
