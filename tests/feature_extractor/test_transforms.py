"""feature_extractor.transforms: the batched training augmentation."""

from __future__ import annotations

from feature_extractor.transforms import Augment, augment_batch


def test_augment_batch_is_seeded_and_in_range() -> None:
    import torch

    x = torch.rand(6, 3, 64, 64)
    a = augment_batch(x, Augment(), torch.Generator().manual_seed(1))
    b = augment_batch(x, Augment(), torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0 and not torch.allclose(a, x)
    flip_only = Augment(flip=1.0, zoom=(1.0, 1.0), brightness=0, contrast=0, saturation=0)
    assert torch.allclose(augment_batch(x, flip_only, torch.Generator()), x.flip(3))
