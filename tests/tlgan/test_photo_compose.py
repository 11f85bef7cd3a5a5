"""Composing an edit back into the whole photo, and the whole photo edit on tiny models."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tlgan.photos.adapter import TuneSettings, encode_adapter
from tlgan.photos.compose import compose_edit, face_mask, face_region
from tlgan.photos.faces import CELEBA_EYES, alignment_matrix, apply_affine, invert_affine
from tlgan.photos.photo_edit import edit_photo
from tlgan.testing import CentredFaceDetector, tiny_generator

R = 64


def _photo(seed: int = 0, w: int = 400, h: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _face_matrix(scale: float = 2.5, angle: float = 12.0, at: tuple[float, float] = (220, 140)
                 ) -> np.ndarray:
    """Photo -> aligned transform of a face ``scale`` x the aligned size, tilted."""
    a = np.deg2rad(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale
    eyes = (CELEBA_EYES * R - R / 2) @ rot.T + np.array(at)
    return alignment_matrix(eyes, R)


def _renders(seed: int = 1, change: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    before = np.random.default_rng(seed).integers(40, 200, (R, R, 3), dtype=np.uint8)
    return before, np.clip(before + change, 0, 255).astype(np.uint8)


def test_the_mask_is_one_inside_and_exactly_zero_at_the_edges() -> None:
    m = face_mask(R)
    assert m.shape == (R, R) and m.dtype == np.float32
    assert m.min() >= 0.0 and m.max() <= 1.0
    assert m[R // 2, R // 2] == pytest.approx(1.0)
    assert m[0].max() == 0 and m[:, 0].max() == 0 and m[:, -1].max() == 0
    hard, soft = face_mask(R, 0.0), face_mask(R, 0.25)
    assert set(np.unique(hard)) <= {0.0, 1.0}
    assert ((soft > 0) & (soft < 1)).sum() > ((m > 0) & (m < 1)).sum()
    with pytest.raises(ValueError, match=r"^feather:"):
        face_mask(R, 0.7)


def test_no_change_returns_the_photo_itself() -> None:
    photo, m = _photo(), _face_matrix()
    before, _ = _renders()
    out = compose_edit(photo, m, before, before.copy())
    assert out is photo


def test_an_edit_changes_the_face_only() -> None:
    photo, m = _photo(), _face_matrix()
    before, after = _renders(change=30.0)
    out = compose_edit(photo, m, before, after)
    assert out is not photo and out.shape == photo.shape
    changed = (out != photo).any(axis=2)
    x0, y0, x1, y1 = face_region(invert_affine(m), R, photo.shape[1], photo.shape[0])
    outside = np.ones_like(changed)
    outside[y0:y1, x0:x1] = False
    assert changed.any() and not changed[outside].any()
    # where the mask is 1 the photo moved by the renders' difference (+30, where not clipped)
    cx, cy = apply_affine(invert_affine(m), np.array([[R / 2, R / 2]]))[0].round().astype(int)
    diff = out[cy - 3:cy + 3, cx - 3:cx + 3].astype(int) - photo[cy - 3:cy + 3,
                                                                cx - 3:cx + 3].astype(int)
    room = photo[cy - 3:cy + 3, cx - 3:cx + 3].astype(int) < 220
    assert np.abs(diff[room] - 30).max() <= 1
    # the aligned corners (mask 0) kept: photo pixels there are untouched
    for corner in ([1, 1], [R - 2, 1], [1, R - 2]):
        px, py = apply_affine(invert_affine(m), np.array([corner], float))[0].round().astype(int)
        if 0 <= px < photo.shape[1] and 0 <= py < photo.shape[0]:
            assert (out[py, px] == photo[py, px]).all()


def test_the_difference_keeps_the_photos_detail_where_paste_does_not() -> None:
    photo, m = _photo(), _face_matrix()
    before, after = _renders(change=0.0)
    after = after.copy()
    after[40:44, 28:36] += 20  # a small edit: a mouth
    diff = compose_edit(photo, m, before, after)
    paste = compose_edit(photo, m, before, after, method="paste")
    assert (diff != photo).any(axis=2).sum() < 0.2 * (paste != photo).any(axis=2).sum()


def test_the_roundtrip_composition_is_not_exact_but_close() -> None:
    photo, m = _photo(), _face_matrix()
    before, _ = _renders()
    out = compose_edit(photo, m, before, before, method="roundtrip")
    err = np.abs(out.astype(int) - photo.astype(int))
    assert err.max() > 0  # resampled twice: random texture does not survive exactly
    with pytest.raises(ValueError, match=r"^method:"):
        compose_edit(photo, m, before, before, method="blend")


def test_bad_arguments_are_named() -> None:
    photo, m = _photo(), _face_matrix()
    before, after = _renders()
    with pytest.raises(ValueError, match=r"^photo:"):
        compose_edit(photo.astype(np.float32), m, before, after)
    with pytest.raises(ValueError, match=r"^matrix:"):
        compose_edit(photo, np.zeros((2, 3)), before, after)
    with pytest.raises(ValueError, match=r"^after:"):
        compose_edit(photo, m, before, after[:32, :32])


def _jpeg(photo: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    return buf.getvalue()


def test_the_whole_edit_no_move_is_the_photo_and_a_later_edit_repeats_the_first() -> None:
    g = tiny_generator(0)
    smooth = np.asarray(Image.fromarray(_photo(3, 48, 40)).resize((240, 200)))
    data = _jpeg(smooth)
    tune = TuneSettings(steps=5, near=1)
    axis = np.random.default_rng(0).standard_normal(g.latent_size).astype(np.float32)

    def encode(aligned: np.ndarray) -> np.ndarray:
        assert aligned.shape == (R, R, 3)
        return g.sample_latents([7])[0]

    still = edit_photo(data, detector=CentredFaceDetector(), generator=g, encode_fn=encode,
                       moves_fn=lambda z: z.copy(), tune=tune)
    assert np.array_equal(still.image, smooth) and still.adapter is not None
    assert still.faces is not None and still.face == 0
    assert set(still.timings) == {"decode", "find", "encode", "tune", "render", "compose"}

    moved = edit_photo(data, detector=CentredFaceDetector(), generator=g, encode_fn=encode,
                       moves_fn=lambda z: z + axis, tune=tune)
    assert not np.array_equal(moved.image, smooth)
    assert encode_adapter(moved.adapter) == encode_adapter(still.adapter)  # type: ignore[arg-type]

    def no_encoding(aligned: np.ndarray) -> np.ndarray:
        raise AssertionError("a later edit must not encode again")

    eyes = still.faces[0].eyes
    later = edit_photo(data, detector=CentredFaceDetector(), generator=g,
                       encode_fn=no_encoding, moves_fn=lambda z: z + axis,
                       latent=moved.latent, adapter=moved.adapter, eyes=eyes)
    assert np.array_equal(later.image, moved.image) and later.faces is None
    with pytest.raises(ValueError, match=r"^eyes:"):
        edit_photo(data, detector=CentredFaceDetector(), generator=g, encode_fn=encode,
                   moves_fn=lambda z: z, eyes=[[1e9, 0], [0, 0]])
    with pytest.raises(ValueError, match=r"^adapter:"):
        edit_photo(data, detector=CentredFaceDetector(), generator=g, encode_fn=encode,
                   moves_fn=lambda z: z, adapter=moved.adapter)
    with pytest.raises(ValueError, match=r"^face:"):
        edit_photo(data, detector=CentredFaceDetector(), generator=g, encode_fn=encode,
                   moves_fn=lambda z: z, face=3)


def test_the_whole_edit_tunes_with_the_extractor_it_is_given() -> None:
    """edit_photo passes its extractor to the tuning: with a perceptual term the adapter
    differs from the one tuned without an extractor (the term left out)."""
    from tlgan.testing import tiny_extractor

    g = tiny_generator(0)
    data = _jpeg(np.asarray(Image.fromarray(_photo(3, 48, 40)).resize((240, 200))))
    tune = TuneSettings(steps=5, near=1, perceptual=1.0, terms_last=2)

    def edit(extractor: object | None) -> str:
        e = edit_photo(data, detector=CentredFaceDetector(), generator=g,
                       encode_fn=lambda a: g.sample_latents([7])[0], moves_fn=lambda z: z,
                       tune=tune, extractor=extractor)
        return encode_adapter(e.adapter)  # type: ignore[arg-type]

    without = edit(None)
    assert without == encode_adapter(edit_photo(
        data, detector=CentredFaceDetector(), generator=g,
        encode_fn=lambda a: g.sample_latents([7])[0], moves_fn=lambda z: z,
        tune=TuneSettings(steps=5, near=1)).adapter)  # type: ignore[arg-type]
    assert edit(tiny_extractor(0)) != without
