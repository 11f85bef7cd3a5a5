"""A whole photo edit: find the face, encode it, tune its adapter, move, compose.

:func:`edit_photo` is the library behind ``POST /photo/edit``: narrow callables in (the
encoder, the move), arrays out; the route, the CLI and the page format the answer. A later
edit of the same photo passes the ``latent`` and ``adapter`` of an earlier answer (skipping
encoding and tuning) and may pass the chosen face's ``eyes`` (skipping face finding, about
0.3 s of a 12-megapixel photo's budget: the eyes fix the alignment exactly as detection
did).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tlgan.generators.base import FaceGenerator, to_uint8
from tlgan.photos.adapter import (
    Adapter,
    TuneSettings,
    check_adapter,
    render_adapted,
    settings_for,
    tune_adapter,
)
from tlgan.photos.compose import DEFAULT_FEATHER, compose_edit
from tlgan.photos.faces import (
    Face,
    FaceDetector,
    alignment_matrix,
    choose_face,
    invert_affine,
)
from tlgan.photos.prepare import UprightPhoto
from tlgan_base.image_codec import MAX_PHOTO_PIXELS


@dataclass(frozen=True)
class Located:
    """The face to edit in a photo: every face found (None when ``eyes`` were given), the
    index chosen, its eye centres and alignment ``matrix`` (photo -> aligned), and the
    aligned face (uint8 (R, R, 3))."""

    faces: list[Face] | None
    face: int
    eyes: np.ndarray
    matrix: np.ndarray
    aligned: np.ndarray


@dataclass(frozen=True)
class Moved:
    """The model work of a photo edit: the face's own latent ``z``, the ``moved`` one, the
    adapter, the two renders (uint8 (R, R, 3); ``after`` is ``before`` when nothing moved)
    and seconds per stage (encode, tune, render)."""

    z: np.ndarray
    moved: np.ndarray
    adapter: Adapter | None
    before: np.ndarray
    after: np.ndarray
    timings: dict[str, float]


@dataclass
class PhotoEdit:
    """The edited photo (uint8 (H, W, 3), the photo itself when nothing moved), the faces
    found (None when ``eyes`` were given), the index edited, its latent and adapter, the
    aligned face and the two renders, and seconds per stage."""

    image: np.ndarray
    faces: list[Face] | None
    face: int
    latent: np.ndarray
    adapter: Adapter | None
    aligned: np.ndarray
    before: np.ndarray
    after: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)


def check_eyes(eyes: object, width: int, height: int) -> np.ndarray:
    """Eye centres from a client: (2, 2) finite, inside the photo, apart by >= 2 px; else
    ValueError naming ``eyes``."""
    try:
        e = np.asarray(eyes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("eyes: expected [[x, y], [x, y]] (image-left eye first)") from None
    if e.shape != (2, 2) or not np.isfinite(e).all():
        raise ValueError("eyes: expected [[x, y], [x, y]] (image-left eye first), finite")
    if (e < 0).any() or (e[:, 0] > width).any() or (e[:, 1] > height).any():
        raise ValueError(f"eyes: must lie inside the {width}x{height} photo")
    if np.linalg.norm(e[1] - e[0]) < 2:
        raise ValueError("eyes: the two eyes must be at least 2 px apart")
    return e


def locate_face(photo: np.ndarray | UprightPhoto, detector: FaceDetector | None, size: int,
                face: int | None = None, eyes: object | None = None) -> Located:
    """Find face ``face`` (None: the largest) of an upright photo (uint8 (H, W, 3), or one
    being decoded, searched on its reduced copy) and align it to ``size`` px; with ``eyes``
    (the face's eye centres from an earlier answer) nothing is detected and ``face`` is
    only echoed (None: 0).

    Raises:
        ValueError: naming ``image`` (no face found), ``face`` (out of range) or ``eyes``.
    """
    if isinstance(photo, np.ndarray):
        photo = UprightPhoto.of(photo)
    w, h = photo.width, photo.height
    faces: list[Face] | None = None
    if eyes is not None:
        e = check_eyes(eyes, w, h)
        matrix = alignment_matrix(e, size)
        index = 0 if face is None else face
    else:
        if detector is None:
            raise ValueError("image: no face detector is loaded (send the face's `eyes`)")
        faces = photo.find(detector, size)
        index = choose_face(faces, face)
        e = np.asarray(faces[index].eyes, dtype=np.float64)
        matrix = faces[index].matrix
    return Located(faces=faces, face=index, eyes=e, matrix=matrix,
                   aligned=photo.aligned(matrix, size))


def implied_box(matrix: np.ndarray, size: int, width: int, height: int
                ) -> tuple[float, float, float, float]:
    """The box (left, top, right, bottom) in photo pixels of the aligned square of side
    ``size`` under ``matrix`` (photo -> aligned), clipped to the photo: the face that eyes
    sent by a client imply."""
    inverse = invert_affine(matrix)
    corners = np.array([[0.0, 0.0], [size, 0.0], [0.0, size], [size, size]])
    p = corners @ inverse[:, :2].T + inverse[:, 2]
    return (max(0.0, float(p[:, 0].min())), max(0.0, float(p[:, 1].min())),
            min(float(width), float(p[:, 0].max())), min(float(height), float(p[:, 1].max())))


def move_face(generator: FaceGenerator, aligned: np.ndarray, *,
              encode_fn: Callable[[np.ndarray], np.ndarray],
              moves_fn: Callable[[np.ndarray], np.ndarray],
              latent: np.ndarray | None = None, adapter: Adapter | None = None,
              tune: TuneSettings | None = None,
              should_stop: Callable[[], bool] | None = None,
              extractor: object | None = None) -> Moved:
    """The model work of a photo edit on its aligned face: encode (unless ``latent``), tune
    the adapter (unless ``adapter``; ``tune.steps`` 0: none), move (``moves_fn``) and render
    the unmoved and the moved latent with the adapter. ``extractor``: for the tuning's
    perceptual term (None: tuned without it).

    Raises:
        ValueError: naming ``latent``, ``adapter`` or what ``moves_fn`` names.
    """
    times: dict[str, float] = {}
    if adapter is not None:
        if latent is None:
            raise ValueError("adapter: comes with the latent it was tuned for (send both)")
        check_adapter(adapter, generator)
    t = time.perf_counter()
    if latent is None:
        z = np.asarray(encode_fn(aligned), dtype=np.float32).reshape(-1)
    else:
        z = np.asarray(latent, dtype=np.float32)
        generator.check_latents(z[None], "latent")
    times["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    settings = settings_for(extractor, tune)  # no extractor: tuned without its term
    if adapter is None and settings.steps > 0:
        adapter = tune_adapter(generator, z, aligned, settings, extractor=extractor,
                               should_stop=should_stop)
    times["tune"] = time.perf_counter() - t
    t = time.perf_counter()
    moved = np.asarray(moves_fn(z), dtype=np.float32)
    if moved.shape != z.shape:
        raise ValueError(f"moves: the moved latent has shape {moved.shape}, not {z.shape}")
    both = to_uint8(render_adapted(generator, np.stack([z, moved]), adapter))
    before, after = both[0], both[1]
    if np.array_equal(z, moved):
        after = before
    times["render"] = time.perf_counter() - t
    return Moved(z=z, moved=moved, adapter=adapter, before=before, after=after,
                 timings=times)


def edit_photo(source: bytes | str | os.PathLike[str], *, detector: FaceDetector,
               generator: FaceGenerator, encode_fn: Callable[[np.ndarray], np.ndarray],
               moves_fn: Callable[[np.ndarray], np.ndarray], face: int | None = None,
               latent: np.ndarray | None = None, adapter: Adapter | None = None,
               eyes: object | None = None, tune: TuneSettings | None = None,
               feather: float = DEFAULT_FEATHER, max_pixels: int = MAX_PHOTO_PIXELS,
               extractor: object | None = None) -> PhotoEdit:
    """Edit one face of a photo; the rest of the photo comes back byte for byte.

    Args:
        source: the photo file (bytes or path); decoded upright (EXIF).
        detector: finds the faces (skipped when ``eyes`` is given).
        generator: renders the face (with the adapter).
        encode_fn: aligned face uint8 (R, R, 3) -> latent (L,) (encoder + refinement);
            not called when ``latent`` is given.
        moves_fn: latent (L,) -> moved latent (L,) (the request's moves and locks).
        face: the face's index, largest first (None: the largest).
        latent, adapter: from an earlier answer for the same photo and face (an adapter
            without its latent is refused); ``adapter`` None with a ``latent``: tuned again.
        eyes: the chosen face's eye centres (from an earlier answer's faces): no detection.
        tune: the adapter's tuning (``steps`` 0: no adapter).
        feather: the composition mask's soft edge.
        extractor: for the tuning's perceptual term (None: tuned without it).

    Raises:
        ValueError: naming ``image``, ``face``, ``eyes``, ``latent`` or ``adapter``.
    """
    times: dict[str, float] = {}
    t = time.perf_counter()
    photo = UprightPhoto(source, max_pixels, search_side=None if eyes is not None
                         else getattr(detector, "work_side", None))
    times["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    found = locate_face(photo, detector, generator.resolution, face, eyes)
    times["find"] = time.perf_counter() - t
    photo.decode_in_background()  # while the face is encoded and tuned
    work = move_face(generator, found.aligned, encode_fn=encode_fn, moves_fn=moves_fn,
                     latent=latent, adapter=adapter, tune=tune, extractor=extractor)
    times.update(work.timings)
    t = time.perf_counter()
    image = compose_edit(photo.pixels, found.matrix, work.before, work.after, feather=feather)
    times["compose"] = time.perf_counter() - t
    return PhotoEdit(image=image, faces=found.faces, face=found.face, latent=work.z,
                     adapter=work.adapter, aligned=found.aligned, before=work.before,
                     after=work.after, timings=times)
