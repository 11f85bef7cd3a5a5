"""Finding and aligning faces in any photo (tlgan.photos): the alignment maths, the real
detector on composed photos, EXIF orientation."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlgan.photos.faces import (
    CELEBA_EYES,
    HaarFaceDetector,
    Scout,
    apply_affine,
    choose_face,
    find_faces,
    invert_affine,
    similarity_from_points,
    warp_face,
)
from tlgan.photos.prepare import UprightPhoto, align_photo, read_upright

REPO = Path(__file__).resolve().parents[2]


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.concatenate([r, [[tx], [ty]]], 1)


def test_a_known_similarity_is_recovered_and_its_inverse_round_trips() -> None:
    rng = np.random.default_rng(0)
    m = _similarity(23.0, 0.37, 12.5, -40.0)
    src = rng.uniform(0, 500, (5, 2))
    got = similarity_from_points(src, apply_affine(m, src))
    np.testing.assert_allclose(got, m, atol=1e-9)
    back = apply_affine(invert_affine(got), apply_affine(got, src))
    np.testing.assert_allclose(back, src, atol=1e-9)
    # two points fix it exactly
    np.testing.assert_allclose(similarity_from_points(src[:2], apply_affine(m, src[:2])), m,
                               atol=1e-9)


def test_coinciding_points_are_refused() -> None:
    with pytest.raises(ValueError, match="points"):
        similarity_from_points(np.ones((2, 2)), np.zeros((2, 2)))


def test_warp_puts_known_eyes_on_the_template() -> None:
    photo = np.zeros((300, 400, 3), np.uint8)
    eyes = np.array([[150.0, 120.0], [210.0, 140.0]])
    for x, y in eyes.astype(int):
        photo[y - 2:y + 3, x - 2:x + 3] = 255
    m = similarity_from_points(eyes, CELEBA_EYES * 128)
    face = warp_face(photo, m, 128).astype(float).sum(2)
    for x, y in np.round(CELEBA_EYES * 128).astype(int):
        assert face[y - 1:y + 2, x - 1:x + 2].max() > 300


def test_choose_face_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^image: no face"):
        choose_face([], None)
    faces = find_faces(np.zeros((40, 40, 3), np.uint8), _Fixed(2), 64)
    assert choose_face(faces, None) == 0 and choose_face(faces, 1) == 1
    with pytest.raises(ValueError, match=r"^face: 2 face"):
        choose_face(faces, 2)


class _Fixed:
    def __init__(self, n: int) -> None:
        self.n = n

    def detect(self, photo: np.ndarray) -> list:
        from tlgan.photos.faces import Detection

        # the smaller face first: find_faces sorts largest first
        return [Detection(box=(0, 0, 10 * (i + 1), 10 * (i + 1)), score=1.0,
                          eyes=np.array([[2.0 * (i + 1), 4], [7.0 * (i + 1), 4]]))
                for i in range(self.n)]


def test_faces_are_sorted_largest_first() -> None:
    faces = find_faces(np.zeros((40, 40, 3), np.uint8), _Fixed(3), 64)
    assert [f.box[2] for f in faces] == [30, 20, 10]


@pytest.fixture(scope="module")
def bench_photos(celeba: Path):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO))
    from bench.photos import _test_crops, compose

    rng = np.random.default_rng(1)
    crops = _test_crops(celeba)
    return [compose(rng, crops, 640, 480, 100, 220, 25) for _ in range(4)]


@pytest.mark.slow
def test_the_real_detector_finds_and_aligns_composed_faces(bench_photos) -> None:  # type: ignore[no-untyped-def]
    det = HaarFaceDetector()
    hits = total = found = 0
    for photo, placements in bench_photos:
        faces = find_faces(photo, det, 64)
        found += len(faces)
        for place in placements:
            total += 1
            true_eyes = apply_affine(invert_affine(place), CELEBA_EYES * 128)
            errs = [np.linalg.norm(apply_affine(f.matrix, true_eyes) - CELEBA_EYES * 64, axis=1)
                    .max() for f in faces]
            hits += bool(errs) and min(errs) < 4.0
    assert total >= 4 and hits / total >= 0.75, (hits, total)
    assert found - hits <= 2, (found, hits)  # few faces where none was pasted


def _eye_error(faces: list, true_eyes: np.ndarray) -> float:  # type: ignore[type-arg]
    """The smallest error (the worse eye's, px at 64) of any face's alignment."""
    return min((float(np.linalg.norm(apply_affine(f.matrix, true_eyes) - CELEBA_EYES * 64,
                                     axis=1).max()) for f in faces), default=np.inf)


@pytest.mark.slow
def test_the_scouted_search_finds_the_faces_of_the_full_sweep_with_the_same_eyes(
        celeba: Path) -> None:
    """The default search (a cheap scout over the whole copy, the full sweep around its
    candidates) finds every face the full sweep over the whole copy finds, tilted ones
    included, and puts their eyes within a few pixels of the sweep's at 64 px."""
    sys.path.insert(0, str(REPO))
    from bench.photos import _test_crops, compose

    rng = np.random.default_rng(7)
    crops = _test_crops(celeba)
    scouted, sweep = HaarFaceDetector(), HaarFaceDetector(scout=None)
    assert scouted.scout == Scout() and sweep.scout is None
    both = tilted = 0
    diffs = []
    for _ in range(6):
        photo, placements = compose(rng, crops, 800, 600, 110, 260, 30.0)
        new, old = find_faces(photo, scouted, 64), find_faces(photo, sweep, 64)
        for place in placements:
            true_eyes = apply_affine(invert_affine(place), CELEBA_EYES * 128)

            if _eye_error(old, true_eyes) < 4.0:
                both += 1
                assert _eye_error(new, true_eyes) < 4.0
                angle = abs(np.degrees(np.arctan2(place[1, 0], place[0, 0])))
                tilted += angle > 15
        for f in old:  # the sweep's faces are the scout's, eyes within 4 px at 64 px
            near = [g for g in new if np.linalg.norm(np.array(g.box[:2]) - f.box[:2])
                    < 0.3 * (f.box[2] - f.box[0])]
            assert near, f.box
            diffs.append(min(np.linalg.norm(apply_affine(f.matrix, g.eyes)
                                            - CELEBA_EYES * 64, axis=1).max() for g in near))
    assert both >= 8 and tilted >= 2, (both, tilted)
    assert max(diffs) < 4.0 and float(np.median(diffs)) < 1.5, diffs


@pytest.mark.slow
def test_a_photo_larger_than_the_search_copy_is_searched_reduced_and_aligned_at_full_size(
        bench_photos) -> None:  # type: ignore[no-untyped-def]
    """A photo larger than the detector's work side (here 2.5x the composed photos: 1600 x
    1200) is searched on a reduced copy; the faces are still found, and aligned from its own
    pixels with the eyes where the known placement puts them."""
    det = HaarFaceDetector()
    k = 2.5
    back = np.array([[1 / k, 0.0, 0.5 / k - 0.5], [0.0, 1 / k, 0.5 / k - 0.5]])  # big -> small
    hits = total = 0
    for photo, placements in bench_photos:
        h, w = photo.shape[:2]
        big = np.asarray(Image.fromarray(photo).resize((round(w * k), round(h * k)),
                                                       Image.Resampling.BILINEAR))
        assert max(big.shape[:2]) > det.work_side
        faces = find_faces(big, det, 64)
        for place in placements:
            total += 1
            to_big = invert_affine(back)
            true_eyes = apply_affine(to_big, apply_affine(invert_affine(place),
                                                          CELEBA_EYES * 128))
            errs = [np.linalg.norm(apply_affine(f.matrix, true_eyes) - CELEBA_EYES * 64, axis=1)
                    .max() for f in faces]
            hits += bool(errs) and min(errs) < 4.0
    assert total >= 4 and hits / total >= 0.75, (hits, total)


@pytest.mark.slow
def test_exif_orientation_gives_boxes_in_the_upright_frame(bench_photos) -> None:  # type: ignore[no-untyped-def]
    photo, _ = bench_photos[0]
    upright = find_faces(photo, HaarFaceDetector(), 64)
    assert upright
    # stored rotated 90 degrees clockwise, tagged "rotate 90 CW to display" (orientation 6)
    stored = Image.fromarray(photo).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif)
    assert read_upright(buf.getvalue()).shape == photo.shape
    got = align_photo(buf.getvalue(), HaarFaceDetector(), 64)
    centre = np.array([(upright[0].box[0] + upright[0].box[2]) / 2,
                       (upright[0].box[1] + upright[0].box[3]) / 2])
    box = got.faces[0].box
    assert np.linalg.norm(np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) - centre) < 10


def _big_jpeg(photo: np.ndarray, k: float, orientation: int | None = None) -> bytes:
    """``photo`` enlarged ``k`` times as a JPEG; with ``orientation`` stored turned 90 degrees
    clockwise and tagged to be turned back (6)."""
    h, w = photo.shape[:2]
    img = Image.fromarray(photo).resize((round(w * k), round(h * k)), Image.Resampling.BILINEAR)
    exif = Image.Exif()
    if orientation is not None:
        img = img.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, exif=exif)
    return buf.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("orientation", [None, 6])
def test_a_large_jpeg_is_searched_on_a_reduced_decode_with_the_faces_and_eyes_of_the_whole(
        bench_photos, orientation: int | None) -> None:  # type: ignore[no-untyped-def]
    """A JPEG larger than the search copy is decoded reduced (DCT domain) for the search:
    the same faces as on the whole decode, boxes and eyes in the whole photo's upright
    pixels within a pixel or two at 64 px, the aligned face within a few gray levels, and
    the whole photo decoded in the background is the whole decode."""
    det = HaarFaceDetector()
    for photo, _ in bench_photos[:2]:
        data = _big_jpeg(photo, 2.5, orientation)
        whole = read_upright(data)
        assert whole.shape == (1200, 1600, 3)
        up = UprightPhoto(data, search_side=det.work_side)
        assert (up.width, up.height) == (1600, 1200) and up.reduced
        assert max(up.search.shape[:2]) >= det.work_side and up.search.shape[1] < 1600
        new, old = up.find(det, 64), find_faces(whole, det, 64)
        assert len(new) == len(old) >= 1
        for f, g in zip(new, old, strict=True):
            side = f.box[2] - f.box[0]
            assert np.abs(np.array(f.box) - np.array(g.box)).max() < 0.1 * side
            err = np.linalg.norm(apply_affine(f.matrix, g.eyes) - CELEBA_EYES * 64, axis=1)
            assert err.max() < 2.0, err
            a, b = up.aligned(f.matrix, 64), warp_face(whole, f.matrix, 64)
            assert np.abs(a.astype(int) - b.astype(int)).mean() < 3.0
        up.decode_in_background()
        assert np.array_equal(up.pixels, whole)
        # the photo edit's first stage: the same faces, the whole photo for composing
        from tlgan.photos.usecase import locate

        located = locate(data, det, 64)
        assert located.located.faces is not None
        assert [f.box for f in located.located.faces] == [f.box for f in new]
        assert set(located.timings) == {"decode", "find"}
        assert np.array_equal(located.pixels, whole)


def test_a_photo_no_larger_than_the_search_copy_is_decoded_once_whole() -> None:
    photo = np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=95)
    up = UprightPhoto(buf.getvalue(), search_side=640)
    assert not up.reduced and up.pixels is up.search
    assert np.array_equal(up.pixels, read_upright(buf.getvalue()))
