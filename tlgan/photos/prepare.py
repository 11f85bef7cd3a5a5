"""A photo upload -> the chosen face, aligned to the generator's framing."""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import ImageOps

from tlgan.photos.faces import (
    Face,
    FaceDetector,
    alignment_matrix,
    apply_affine,
    choose_face,
    find_faces,
    invert_affine,
    is_already_aligned,
    warp_face,
)
from tlgan_base.image_codec import MAX_PHOTO_PIXELS, corrupt_photo, open_photo, read_photo

#: a photo whose only face's aligned frame lies within this fraction of its side of the centre
#: square is taken as an aligned crop already (the eye landmarks' own scatter on the subset's
#: crops moves the frame's corners by 6% of the side at the median)
AS_IS_TOLERANCE = 0.10
#: the EXIF tag of the orientation, and its values that turn the photo by 90 degrees
ORIENTATION_TAG = 0x0112
TURNING_ORIENTATIONS = (5, 6, 7, 8)


@dataclass(frozen=True)
class AlignedPhoto:
    """The face to encode (``aligned``, uint8 (size, size, 3)), every face found (largest
    first) and the index of the one aligned; ``as_is``: the photo was already an aligned crop
    (its centre square, resized, is the face: today's framing kept exactly)."""

    aligned: np.ndarray
    faces: list[Face]
    face: int
    width: int
    height: int
    as_is: bool


def read_upright(source: bytes | str | os.PathLike[str],
                 max_pixels: int = MAX_PHOTO_PIXELS, *, name: str = "image") -> np.ndarray:
    """The whole photo, uint8 (H, W, 3) RGB, EXIF orientation applied; checked like
    :func:`tlgan_base.image_codec.read_photo` (format, pixel count, corrupt data)."""
    return _decode(source, max_pixels, name, None)[0]


def _decode(source: bytes | str | os.PathLike[str], max_pixels: int, name: str,
            min_side: int | None) -> tuple[np.ndarray, int, int]:
    """The photo upright (as :func:`read_upright`) and its upright width and height;
    ``min_side``: a JPEG is decoded reduced in the DCT domain (by 2, 4 or 8, Pillow's draft
    mode: a fraction of the time) as far as its longer side stays at least ``min_side``
    (other formats: whole)."""
    with open_photo(source, max_pixels, name=name) as im:
        w, h = im.size
        try:
            if im.getexif().get(ORIENTATION_TAG) in TURNING_ORIENTATIONS:
                w, h = h, w
            if min_side is not None and im.format in ("JPEG", "MPO"):
                k = max(1.0, max(w, h) / min_side)
                im.draft("RGB", (math.ceil(im.size[0] / k), math.ceil(im.size[1] / k)))
            pixels = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as exc:
            raise corrupt_photo(name, im.format, exc) from None
    return pixels, w, h


class UprightPhoto:
    """A photo to find faces in, decoded upright (EXIF orientation applied) and checked.

    ``search`` is a copy decoded reduced (JPEG in the DCT domain) to no less than
    ``search_side`` on its longer side (None: the whole photo); :attr:`pixels` is the whole
    photo, decoded on first use or in a background thread once :meth:`decode_in_background`
    is called (a server decodes it while the face is encoded and tuned). :meth:`aligned`
    warps a face from the reduced copy where that holds at least twice the aligned face's
    detail, else from the whole photo.
    """

    def __init__(self, source: bytes | str | os.PathLike[str],
                 max_pixels: int = MAX_PHOTO_PIXELS, *, name: str = "image",
                 search_side: int | None = None,
                 pixels: np.ndarray | None = None) -> None:
        self._source, self._max_pixels, self._name = source, max_pixels, name
        self._lock = threading.Lock()
        self._whole: Future[np.ndarray] | None = None
        if pixels is not None:
            self.search = pixels
            self.height, self.width = pixels.shape[:2]
        else:
            self.search, self.width, self.height = _decode(source, max_pixels, name,
                                                           search_side)
        if not self.reduced:
            self._whole = Future()
            self._whole.set_result(self.search)

    @classmethod
    def of(cls, pixels: np.ndarray) -> UprightPhoto:
        """An already decoded upright photo (uint8 (H, W, 3))."""
        return cls(b"", pixels=pixels)

    @property
    def reduced(self) -> bool:
        """Whether ``search`` is smaller than the photo."""
        return self.search.shape[:2] != (self.height, self.width)

    @property
    def to_photo(self) -> np.ndarray:
        """The transform (2, 3) of ``search`` px to photo px (pixel centres)."""
        kx = self.width / self.search.shape[1]
        ky = self.height / self.search.shape[0]
        return np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5]])

    def decode_in_background(self) -> Future[np.ndarray]:
        """Start decoding the whole photo in a thread (once; nothing if it is decoded): its
        future."""
        with self._lock:
            if self._whole is not None:
                return self._whole
            whole: Future[np.ndarray] = Future()
            self._whole = whole

        def run() -> None:
            if whole.set_running_or_notify_cancel():
                try:
                    whole.set_result(read_upright(self._source, self._max_pixels,
                                                  name=self._name))
                except BaseException as exc:  # handed to whoever asks for the pixels
                    whole.set_exception(exc)

        threading.Thread(target=run, name="tlgan-photo-decode", daemon=True).start()
        return whole

    @property
    def pixels(self) -> np.ndarray:
        """The whole photo, uint8 (H, W, 3) (waits for its decoding).

        Raises:
            ValueError: naming the photo's field (truncated or corrupt data).
        """
        return self.decode_in_background().result()

    def find(self, detector: FaceDetector, size: int) -> list[Face]:
        """Every face ``detector`` finds in ``search``, in photo px, aligned at ``size``
        (:func:`tlgan.photos.faces.find_faces`)."""
        faces = find_faces(self.search, detector, size)
        if not self.reduced:
            return faces
        m = self.to_photo
        out = []
        for f in faces:
            (left, top), (right, bottom) = apply_affine(m, np.array([f.box[:2], f.box[2:]]))
            eyes = apply_affine(m, f.eyes)
            matrix = alignment_matrix(eyes, size)
            out.append(replace(f, box=(float(left), float(top), float(right), float(bottom)),
                               eyes=eyes, matrix=matrix, inverse=invert_affine(matrix)))
        out.sort(key=lambda f: (-f.area, f.box[0], f.box[1]))
        return out

    def aligned(self, matrix: np.ndarray, size: int) -> np.ndarray:
        """The face ``matrix`` (photo px -> aligned px) aligns, uint8 (size, size, 3)."""
        m = np.asarray(matrix, dtype=np.float64)
        to_search = m[:, :2] @ self.to_photo[:, :2]
        if self.reduced and np.sqrt(abs(np.linalg.det(to_search))) <= 0.5:
            return warp_face(self.search, np.concatenate(
                [to_search, (m[:, :2] @ self.to_photo[:, 2] + m[:, 2])[:, None]], 1), size)
        return warp_face(self.pixels, m, size)


def align_photo(source: bytes | str | os.PathLike[str], detector: FaceDetector, size: int,
                face: int | None = None, max_pixels: int = MAX_PHOTO_PIXELS, *,
                name: str = "image", face_name: str = "face") -> AlignedPhoto:
    """Decode a photo, find its faces, and align face ``face`` (None: the largest).

    Raises:
        ValueError: naming ``name`` (unreadable photo, no face found) or ``face_name``
            (index out of range).
    """
    photo = UprightPhoto(source, max_pixels, name=name,
                         search_side=getattr(detector, "work_side", None))
    w, h = photo.width, photo.height
    faces = photo.find(detector, size)
    index = choose_face(faces, face, face_name)
    chosen = faces[index]
    as_is = len(faces) == 1 and is_already_aligned(chosen, w, h, AS_IS_TOLERANCE)
    aligned = (read_photo(source, size, max_pixels, name=name) if as_is
               else photo.aligned(chosen.matrix, size))
    return AlignedPhoto(aligned=aligned, faces=faces, face=index, width=w, height=h,
                        as_is=as_is)


def faces_json(faces: list[Face]) -> list[dict[str, Any]]:
    """The answer's ``faces``: each ``box`` [left, top, right, bottom] (photo pixels, rounded
    to 0.1) and ``score``."""
    return [{"box": [round(v, 1) for v in f.box], "score": round(f.score, 3)} for f in faces]
