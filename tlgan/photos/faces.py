"""Find faces in any photo and warp one to CelebA's aligned-crop framing.

Arrays in, arrays out: a photo is uint8 (H, W, 3) RGB, upright (EXIF orientation applied by
the caller). A :class:`FaceDetector` finds faces with two eye centres each; the eyes fix a
similarity transform (rotation, uniform scale, translation) onto :data:`CELEBA_EYES`, the
eye positions of the CelebA subset's aligned crops, and :func:`warp_face` renders the aligned
face at any size. Each :class:`Face` keeps the transform and its inverse (aligned face ->
photo pixels), to paste an edited face back.

The detector (:class:`HaarFaceDetector`) is OpenCV's bundled Haar cascades (frontal face,
then the eye cascade inside each face), run on copies of the photo rotated by -30..30
degrees so that tilted faces are found too, around the candidates of a cheaper
:class:`Scout` pass; nothing is loaded at import and nothing is downloaded. Why this
detector: docs/photos.md (the candidates compared by bench/photos.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Protocol

import cv2
import numpy as np

#: Eye centres (image-left eye, image-right eye) in the CelebA subset's aligned crops, as
#: fractions of the crop's side (x, y). Provenance: the mean of HaarFaceDetector's eye
#: centres on the 128 px crops of the subset's partition 0 where both eyes were found (142 of
#: the first 200; `python bench/photos.py --template 200`, docs/photos.md); the subset ships
#: no landmark list.
CELEBA_EYES = np.array([[0.3792, 0.4324], [0.6099, 0.4339]])

#: rotations (degrees) at which the photo is searched: a face tilted up to about 30 degrees
#: is upright within 7.5 degrees in one of them
DEFAULT_ANGLES = (0.0, -15.0, 15.0, -30.0, 30.0)
#: the longer side (px) of the reduced copy the cascade searches: on the composed photos of
#: bench/photos.py, 640 finds the same faces as 800 (71/71, the same extra faces, eye error
#: median 1.06 px against 0.99, p90 2.28 against 2.46) in 0.64x the time; 512 lost a face
WORK_SIDE = 640


@dataclass(frozen=True)
class Detection:
    """A face found by a detector, in the photo's pixels.

    box: (left, top, right, bottom); score: the detector's confidence (higher is surer; for
    HaarFaceDetector the number of raw detections merged into the box); eyes: (2, 2) centres
    (x, y) of the image-left then the image-right eye; eyes_found: how many of the two eyes
    the landmarker saw (the others are placed from the box).
    """

    box: tuple[float, float, float, float]
    score: float
    eyes: np.ndarray
    eyes_found: int = 2


class FaceDetector(Protocol):
    """Anything that finds faces with eye centres in an upright uint8 RGB photo."""

    def detect(self, photo: np.ndarray) -> list[Detection]: ...


@dataclass(frozen=True)
class Face:
    """A face found and its alignment.

    ``matrix`` (2, 3) maps photo pixels to the aligned face's pixels at ``size``; ``inverse``
    maps the aligned face back into the photo.
    """

    box: tuple[float, float, float, float]
    score: float
    eyes: np.ndarray
    size: int
    matrix: np.ndarray = field(repr=False)
    inverse: np.ndarray = field(repr=False)

    @property
    def area(self) -> float:
        left, top, right, bottom = self.box
        return (right - left) * (bottom - top)


# ------------------------------------------------------------------------------------------
# Alignment maths


def similarity_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The similarity transform (2, 3) that best maps points ``src`` (N, 2) onto ``dst``.

    Least squares (Umeyama, no reflection); exact for N = 2 distinct points.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"points: expected two (N >= 2, 2) arrays, got {src.shape} and "
                         f"{dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var = (s ** 2).sum() / len(src)
    if var <= 1e-12:
        raise ValueError("points: the source points coincide")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / var
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse of an invertible affine transform (2, 3)."""
    a = np.asarray(m, dtype=np.float64)[:, :2]
    inv = np.linalg.inv(a)
    out = np.empty((2, 3))
    out[:, :2] = inv
    out[:, 2] = -inv @ np.asarray(m, dtype=np.float64)[:, 2]
    return out


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 2) mapped by the affine transform ``m`` (2, 3)."""
    p = np.asarray(points, dtype=np.float64)
    return p @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]


def alignment_matrix(eyes: np.ndarray, size: int,
                     template: np.ndarray = CELEBA_EYES) -> np.ndarray:
    """Photo -> aligned face (``size`` px) transform that puts ``eyes`` on the template."""
    return similarity_from_points(eyes, np.asarray(template) * size)


def warp_face(photo: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The aligned face (size, size, 3) uint8: ``photo`` warped by ``matrix``.

    A face much larger than ``size`` is first area-reduced, so the result is not aliased.
    Pixels outside the photo repeat its border.
    """
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # aligned px per photo px
    src = photo
    factor = int(1.0 / scale) // 2 if scale > 0 else 1
    if factor >= 2:
        h, w = photo.shape[:2]
        sw, sh = max(1, w // factor), max(1, h // factor)
        src = cv2.resize(photo, (sw, sh), interpolation=cv2.INTER_AREA)
        pre = np.array([[w / sw, 0.0, 0.0], [0.0, h / sh, 0.0]])  # reduced -> photo
        # reduced pixel centres: x_photo = (x_red + 0.5) * w / sw - 0.5
        pre[0, 2] = 0.5 * w / sw - 0.5
        pre[1, 2] = 0.5 * h / sh - 0.5
        m = np.concatenate([m[:, :2] @ pre[:, :2], (m[:, :2] @ pre[:, 2] + m[:, 2])[:, None]], 1)
    out = cv2.warpAffine(np.ascontiguousarray(src), m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(out, dtype=np.uint8)


def centre_crop_matrix(width: int, height: int, size: int) -> np.ndarray:
    """Photo -> ``size`` px transform of a centre square crop resized (today's framing)."""
    s = min(width, height)
    k = size / s
    left, top = (width - s) / 2, (height - s) / 2
    # pixel centres: x_out + 0.5 = (x + 0.5 - left) * k
    return np.array([[k, 0.0, (0.5 - left) * k - 0.5], [0.0, k, (0.5 - top) * k - 0.5]])


def is_already_aligned(face: Face, width: int, height: int, tolerance: float = 0.03) -> bool:
    """Whether the photo's centre square is already ``face``'s aligned framing: the aligned
    frame's corners land within ``tolerance`` x side of the centre crop's."""
    corners = np.array([[0, 0], [face.size, 0], [0, face.size], [face.size, face.size]], float)
    here = apply_affine(face.inverse, corners)
    crop = apply_affine(invert_affine(centre_crop_matrix(width, height, face.size)), corners)
    side = min(width, height)
    return bool(np.abs(here - crop).max() <= tolerance * side)


def find_faces(photo: np.ndarray, detector: FaceDetector, size: int,
               template: np.ndarray = CELEBA_EYES) -> list[Face]:
    """Every face ``detector`` finds in ``photo``, aligned at ``size`` px, largest box first
    (ties: leftmost first)."""
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"photo: expected uint8 (H, W, 3), got {photo.dtype} {photo.shape}")
    faces = []
    for d in detector.detect(photo):
        m = alignment_matrix(d.eyes, size, template)
        faces.append(Face(box=d.box, score=d.score, eyes=d.eyes, size=size, matrix=m,
                          inverse=invert_affine(m)))
    faces.sort(key=lambda f: (-f.area, f.box[0], f.box[1]))
    return faces


def choose_face(faces: list[Face], face: int | None, name: str = "face") -> int:
    """The index of the face to use: ``face`` (checked), or 0, the largest."""
    if not faces:
        raise ValueError("image: no face found in the photo (faces must be roughly frontal, "
                         "tilted at most about 30 degrees, and at least about 40 px wide)")
    index = 0 if face is None else face
    if not 0 <= index < len(faces):
        raise ValueError(f"{name}: {len(faces)} face(s) found (indices 0 to {len(faces) - 1}, "
                         f"largest first), got {face}")
    return index


# ------------------------------------------------------------------------------------------
# The detector: OpenCV's bundled Haar cascades


@dataclass(frozen=True)
class Scout:
    """The cheap first search of :class:`HaarFaceDetector`: the face cascade over the whole
    search copy at fewer angles, a coarser scale step and fewer neighbours, for candidates
    only; the detector's own sweep then runs around each candidate.

    On the composed photos of bench/photos.py a face is a candidate wherever the full sweep
    finds it: angles 20 degrees apart (the cascade finds 99% of faces tilted 10 degrees from
    upright, 74% at 20), scale step 1.3 (1.4 lost 5 of 112 faces), 2 neighbours.
    """

    angles: tuple[float, ...] = (0.0, -20.0, 20.0)
    scale_factor: float = 1.3
    min_neighbors: int = 2
    #: a candidate is searched in a square patch this many times its side, for boxes from
    #: its side / span to its side x span
    margin: float = 2.2
    span: float = 1.5
    #: a candidate larger than this (search-copy px) is searched in a patch reduced to it
    #: (its eyes too: 128 px keeps the eye error of the full sweep on bench/photos.py's
    #: large faces, 96 px loses a little)
    max_side: float = 128.0


class HaarFaceDetector:
    """Faces with OpenCV's frontal-face cascade, eyes with its eye cascade inside each face.

    The photo is reduced so that its longer side is at most ``work_side`` px and searched
    upright and rotated by each of ``angles``. With a ``scout`` (the default) that sweep runs
    only around the candidates the scout's cheaper pass over the whole copy finds (a patch
    a little larger than each, rotated about it); with ``scout=None`` it runs over the
    whole copy at every angle (the reference: about 3.5 times the time, the same faces on
    bench/photos.py). Detections of one face at several angles are merged (the one with
    both eyes found and the most raw detections is kept). An eye the eye cascade misses is
    placed where the template puts it in the face's box. Cascades are loaded on first use,
    one set per thread (OpenCV's detector is not thread-safe).
    """

    #: eye centres relative to the cascade's face box (fractions of its side), the mean over
    #: the subset's crops (bench/photos.py --template 200); used for an eye the cascade misses
    EYES_IN_BOX = np.array([[0.309, 0.380], [0.683, 0.382]])

    def __init__(self, angles: tuple[float, ...] = DEFAULT_ANGLES, work_side: int = WORK_SIDE,
                 min_face: int = 24, min_neighbors: int = 5, scale_factor: float = 1.1,
                 min_score: float = 20.0, equalize: bool = False,
                 scout: Scout | None = Scout()) -> None:
        self.equalize = equalize
        self.angles = tuple(angles)
        self.min_score = min_score
        self.scale_factor = scale_factor
        self.work_side = work_side
        self.min_face = min_face
        self.min_neighbors = min_neighbors
        self.scout = scout
        self._local = threading.local()

    def _cascades(self) -> tuple[object, object]:
        loaded = getattr(self._local, "cascades", None)
        if loaded is None:
            root = cv2.data.haarcascades  # type: ignore[attr-defined]
            face = cv2.CascadeClassifier(root + "haarcascade_frontalface_default.xml")
            eye = cv2.CascadeClassifier(root + "haarcascade_eye.xml")
            if face.empty() or eye.empty():
                raise RuntimeError(f"OpenCV's Haar cascades are missing from {root}")
            loaded = self._local.cascades = (face, eye)
        return loaded

    def detect(self, photo: np.ndarray) -> list[Detection]:
        h, w = photo.shape[:2]
        k = min(1.0, self.work_side / max(h, w))
        gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
        if k < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * k)), max(1, round(h * k))),
                              interpolation=cv2.INTER_AREA)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        to_photo = np.array([[1 / k, 0, 0.5 / k - 0.5], [0, 1 / k, 0.5 / k - 0.5]])
        found = (self._sweep(gray, to_photo) if self.scout is None
                 else self._refine(gray, to_photo, self._candidates(gray, self.scout),
                                   self.scout))
        return _merge(found, self.min_score)

    def _sweep(self, gray: np.ndarray, to_photo: np.ndarray
               ) -> list[tuple[Detection, float]]:
        """The face cascade over the whole search copy at every angle."""
        face_c, _ = self._cascades()
        found: list[tuple[Detection, float]] = []
        for angle in self.angles:
            img, rot = _rotated(gray, angle)
            boxes, counts = face_c.detectMultiScale2(  # type: ignore[attr-defined]
                img, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(self.min_face, self.min_face))
            found += self._detections(img, _compose(to_photo, invert_affine(rot)),
                                      np.reshape(boxes, (-1, 4)), np.ravel(counts))
        return found

    def _candidates(self, gray: np.ndarray, scout: Scout) -> list[tuple[np.ndarray, float]]:
        """The scout's candidates (centre in search-copy px, side), one per face (those of
        one face at several angles and scales grouped as :func:`_merge` groups)."""
        face_c, _ = self._cascades()
        raw: list[tuple[int, float, float, float]] = []
        for angle in scout.angles:
            img, rot = _rotated(gray, angle)
            boxes, counts = face_c.detectMultiScale2(  # type: ignore[attr-defined]
                img, scaleFactor=scout.scale_factor, minNeighbors=scout.min_neighbors,
                minSize=(self.min_face, self.min_face))
            back = invert_affine(rot)
            for (x, y, bw, _bh), n in zip(np.reshape(boxes, (-1, 4)), np.ravel(counts),
                                          strict=True):
                cx, cy = apply_affine(back, np.array([[x + bw / 2, y + bw / 2]]))[0]
                raw.append((int(n), float(bw), float(cx), float(cy)))
        groups: list[tuple[np.ndarray, float]] = []
        for _n, side, cx, cy in sorted(raw, key=lambda r: (-r[0], -r[1], r[2], r[3])):
            c = np.array([cx, cy])
            if not any(_same_face(c, side, gc, gs) for gc, gs in groups):
                groups.append((c, side))
        return groups

    def _refine(self, gray: np.ndarray, to_photo: np.ndarray,
                candidates: list[tuple[np.ndarray, float]], scout: Scout
                ) -> list[tuple[Detection, float]]:
        """The full sweep's search (every angle, its scale step and neighbours) in a patch
        around each candidate; a face two patches hold is counted once per angle."""
        face_c, _ = self._cascades()
        found: list[tuple[Detection, float]] = []
        seen: dict[float, list[tuple[np.ndarray, float]]] = {a: [] for a in self.angles}
        for c, side in candidates:
            q = min(1.0, scout.max_side / side)  # patch px per search-copy px
            patch_side = int(np.ceil(scout.margin * side * q))
            lo = max(self.min_face, int(side * q / scout.span))
            hi = max(lo + 1, int(np.ceil(side * q * scout.span)))
            for angle in self.angles:
                # search copy -> patch: rotated about the candidate, scaled by q, centred
                rot = np.array(cv2.getRotationMatrix2D((float(c[0]), float(c[1])), angle, q),
                               dtype=np.float64)
                rot[:, 2] += patch_side / 2 - c
                patch = cv2.warpAffine(gray, rot, (patch_side, patch_side),
                                       flags=cv2.INTER_LINEAR if q == 1.0 else cv2.INTER_AREA)
                back = invert_affine(rot)
                boxes, counts = face_c.detectMultiScale2(  # type: ignore[attr-defined]
                    patch, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                    minSize=(lo, lo), maxSize=(hi, hi))
                keep = []
                for box in np.reshape(boxes, (-1, 4)):
                    x, y, bw, _ = (float(v) for v in box)
                    bc = apply_affine(back, np.array([[x + bw / 2, y + bw / 2]]))[0]
                    twice = any(np.linalg.norm(bc - sc) < 0.2 * min(bw / q, ss)
                                and max(bw / q, ss) < 1.25 * min(bw / q, ss)
                                for sc, ss in seen[angle])
                    keep.append(not twice)
                    if not twice:
                        seen[angle].append((bc, bw / q))
                keep_arr = np.array(keep, dtype=bool)
                found += self._detections(patch, _compose(to_photo, back),
                                          np.reshape(boxes, (-1, 4))[keep_arr],
                                          np.ravel(counts)[keep_arr])
        return found

    def _detections(self, img: np.ndarray, to_photo: np.ndarray, boxes: np.ndarray,
                    counts: np.ndarray) -> list[tuple[Detection, float]]:
        """The cascade's ``boxes`` in ``img`` with their eyes, mapped by ``to_photo`` (img px
        -> photo px, a similarity), and each one's side in photo px."""
        _, eye_c = self._cascades()
        scale = float(np.sqrt(abs(np.linalg.det(to_photo[:, :2]))))  # photo px per img px
        out = []
        for (x, y, bw, bh), n in zip(np.reshape(boxes, (-1, 4)), np.ravel(counts),
                                     strict=True):
            eyes, n_eyes = self._eyes(eye_c, img, x, y, bw, bh)
            centre = apply_affine(to_photo, np.array([[x + bw / 2, y + bh / 2]]))[0]
            half = bw / 2 * scale
            box = (float(centre[0] - half), float(centre[1] - half),
                   float(centre[0] + half), float(centre[1] + half))
            out.append((Detection(box=box, score=float(n), eyes=apply_affine(to_photo, eyes),
                                  eyes_found=n_eyes), 2 * half))
        return out

    def _eyes(self, eye_c: object, img: np.ndarray, x: int, y: int, bw: int,
              bh: int) -> tuple[np.ndarray, int]:
        expected = np.array([[x, y]]) + self.EYES_IN_BOX * np.array([[bw, bh]])
        top, bottom = y + int(0.15 * bh), y + int(0.6 * bh)
        roi = img[top:bottom, x:x + bw]
        lo, hi = max(4, bw // 10), max(5, bw // 3)
        cands = eye_c.detectMultiScale(roi, scaleFactor=1.1, minNeighbors=3,  # type: ignore[attr-defined]
                                       minSize=(lo, lo), maxSize=(hi, hi))
        centres = [np.array([x + ex + ew / 2, top + ey + eh / 2])
                   for ex, ey, ew, eh in np.reshape(cands, (-1, 4))]
        eyes = expected.copy()
        n = 0
        for i in range(2):
            near = [c for c in centres if np.linalg.norm(c - expected[i]) < 0.16 * bw]
            if near:
                eyes[i] = min(near, key=lambda c: float(np.linalg.norm(c - expected[i])))
                n += 1
        if n == 2 and np.linalg.norm(eyes[1] - eyes[0]) < 0.2 * bw:  # one eye seen twice
            eyes, n = expected, 0
        return eyes, n


def _rotated(gray: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``gray`` rotated by ``angle`` degrees about its centre onto a canvas that holds all of
    it, and the transform (2, 3) gray px -> rotated px."""
    gh, gw = gray.shape
    rot = cv2.getRotationMatrix2D((gw / 2, gh / 2), angle, 1.0)
    cos, sin = abs(rot[0, 0]), abs(rot[0, 1])
    rw, rh = int(gw * cos + gh * sin + 0.5), int(gw * sin + gh * cos + 0.5)
    rot[0, 2] += rw / 2 - gw / 2
    rot[1, 2] += rh / 2 - gh / 2
    if angle == 0:
        return gray, rot
    return cv2.warpAffine(gray, rot, (rw, rh), flags=cv2.INTER_LINEAR), rot


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The affine transform ``a`` after ``b`` (x -> a(b(x)))."""
    out = np.empty((2, 3))
    out[:, :2] = a[:, :2] @ b[:, :2]
    out[:, 2] = a[:, :2] @ b[:, 2] + a[:, 2]
    return out


def _same_face(c: np.ndarray, side: float, other_c: np.ndarray, other_side: float) -> bool:
    """Whether two boxes (centre, side) are one face: centres closer than half the smaller
    side, sides within a factor of 2."""
    small, large = min(side, other_side), max(side, other_side)
    return bool(np.linalg.norm(c - other_c) < 0.5 * small and large < 2 * small)


def _merge(found: list[tuple[Detection, float]], min_score: float) -> list[Detection]:
    """One detection per face: detections of one face (:func:`_same_face`; at one angle or
    several) are merged, keeping the one with more eyes found, then the higher score (then
    the larger, then the leftmost: the same every run); the merged face's score is the sum
    of its members' (a face is seen at several angles and scales, a texture rarely). Faces
    scoring under ``min_score`` are dropped."""
    order = sorted(found, key=lambda t: (-t[0].eyes_found, -t[0].score, -t[1], t[0].box[0],
                                         t[0].box[1]))
    kept: list[tuple[Detection, float]] = []
    totals: list[float] = []
    for det, side in order:
        c = np.array([(det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2])
        for i, (k, s) in enumerate(kept):
            kc = np.array([(k.box[0] + k.box[2]) / 2, (k.box[1] + k.box[3]) / 2])
            if _same_face(c, side, kc, s):
                totals[i] += det.score
                break
        else:
            kept.append((det, side))
            totals.append(det.score)
    return [replace(d, score=t) for (d, _), t in zip(kept, totals, strict=True)
            if t >= min_score]
