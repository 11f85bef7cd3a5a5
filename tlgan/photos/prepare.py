"""A photo upload -> the chosen face, aligned to the generator's framing."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from tlgan.photos.faces import (
    Face,
    FaceDetector,
    choose_face,
    find_faces,
    is_already_aligned,
    warp_face,
)
from tlgan_base.image_codec import MAX_PHOTO_PIXELS, read_photo

#: a photo whose only face's aligned frame lies within this fraction of its side of the centre
#: square is taken as an aligned crop already (the eye landmarks' own scatter on the subset's
#: crops moves the frame's corners by 6% of the side at the median)
AS_IS_TOLERANCE = 0.10


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
    read_photo(source, 1, max_pixels, name=name)  # the checks, before the full decode
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        try:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as exc:
            raise ValueError(f"{name}: the {im.format} file is truncated or corrupt "
                             f"({' '.join(str(exc).split())[:120]})") from None


def align_photo(source: bytes | str | os.PathLike[str], detector: FaceDetector, size: int,
                face: int | None = None, max_pixels: int = MAX_PHOTO_PIXELS, *,
                name: str = "image", face_name: str = "face") -> AlignedPhoto:
    """Decode a photo, find its faces, and align face ``face`` (None: the largest).

    Raises:
        ValueError: naming ``name`` (unreadable photo, no face found) or ``face_name``
            (index out of range).
    """
    photo = read_upright(source, max_pixels, name=name)
    h, w = photo.shape[:2]
    faces = find_faces(photo, detector, size)
    index = choose_face(faces, face, face_name)
    chosen = faces[index]
    as_is = len(faces) == 1 and is_already_aligned(chosen, w, h, AS_IS_TOLERANCE)
    aligned = (read_photo(source, size, max_pixels, name=name) if as_is
               else warp_face(photo, chosen.matrix, size))
    return AlignedPhoto(aligned=aligned, faces=faces, face=index, width=w, height=h,
                        as_is=as_is)


def faces_json(faces: list[Face]) -> list[dict[str, Any]]:
    """The answer's ``faces``: each ``box`` [left, top, right, bottom] (photo pixels, rounded
    to 0.1) and ``score``."""
    return [{"box": [round(v, 1) for v in f.box], "score": round(f.score, 3)} for f in faces]
