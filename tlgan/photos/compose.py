"""Put an edit of the aligned face back into the whole photo, at the photo's own resolution.

The edit is known at the generator's resolution as two renders of the tuned generator: the
unmoved latent (``before``) and the moved one (``after``). :func:`compose_edit` carries
their *difference* into the photo: upsampled and warped straight from the aligned frame into
the face's region of the photo by the face's inverse alignment (one cubic resampling of the
64 px difference, none of the photo), weighted by a soft elliptic face mask
(:func:`face_mask`) and added to the photo's own pixels. So everything outside the mask is
the photo byte for byte, the face keeps the photo's detail wherever the edit changes nothing,
and an edit that changes nothing returns the photo itself.

Two other compositions are kept for the evidence (``method``; docs/photos.md): ``"paste"``
(the moved render itself, upsampled, under the mask: the photo's detail is lost) and
``"roundtrip"`` (the photo's face warped to the aligned frame at its native resolution, the
difference added there, warped back: the photo is resampled twice, so even no edit is not
exact).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tlgan.photos.faces import invert_affine

#: the face mask, in fractions of the aligned face's side: the ellipse's centre (x, y) and
#: half-axes, and the width of its soft edge (chosen on evidence, docs/photos.md)
MASK_CENTRE = (0.5, 0.53)
MASK_AXES = (0.38, 0.46)
DEFAULT_FEATHER = 0.12
METHODS = ("difference", "paste", "roundtrip")


def face_mask(size: int, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """float32 (size, size) in [0, 1]: 1 inside the face ellipse, falling smoothly (a cosine
    ramp ``feather`` x side wide, inside the ellipse's edge) to exactly 0 on and outside it."""
    if not (math.isfinite(feather) and 0 <= feather < 0.5):
        raise ValueError(f"feather: must be in [0, 0.5), got {feather!r}")
    c = (np.arange(size) + 0.5) / size
    x = (c[None, :] - MASK_CENTRE[0]) / MASK_AXES[0]
    y = (c[:, None] - MASK_CENTRE[1]) / MASK_AXES[1]
    # distance inside the edge, in fractions of the side (approximately, along the radius)
    r = np.sqrt(x * x + y * y)
    inside = (1.0 - r) * min(MASK_AXES)
    if feather == 0:
        return (inside > 0).astype(np.float32)
    t = np.clip(inside / feather, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def face_region(inverse: np.ndarray, size: int, width: int, height: int
                ) -> tuple[int, int, int, int]:
    """The photo's pixels (left, top, right, bottom; right/bottom exclusive) that the aligned
    square of side ``size`` covers under ``inverse`` (aligned -> photo), clipped to the
    photo, with a pixel of margin for interpolation."""
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5],
                        [size - 0.5, size - 0.5]])
    p = corners @ np.asarray(inverse)[:, :2].T + np.asarray(inverse)[:, 2]
    left = max(0, math.floor(p[:, 0].min()) - 1)
    top = max(0, math.floor(p[:, 1].min()) - 1)
    right = min(width, math.ceil(p[:, 0].max()) + 2)
    bottom = min(height, math.ceil(p[:, 1].max()) + 2)
    return left, top, max(left, right), max(top, bottom)


def _check(photo: np.ndarray, matrix: np.ndarray, before: np.ndarray,
           after: np.ndarray) -> tuple[np.ndarray, int]:
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"photo: expected uint8 (H, W, 3), got {photo.dtype} {photo.shape}")
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3) or not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-9:
        raise ValueError(f"matrix: expected an invertible finite (2, 3) affine, got {m.shape}")
    for name, a in (("before", before), ("after", after)):
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or a.shape[0] != a.shape[1]:
            raise ValueError(f"{name}: expected a uint8 (R, R, 3) render, got {a.dtype} "
                             f"{a.shape}")
    if before.shape != after.shape:
        raise ValueError(f"after: shape {after.shape} differs from before's {before.shape}")
    return m, before.shape[0]


def compose_edit(photo: np.ndarray, matrix: np.ndarray, before: np.ndarray,
                 after: np.ndarray, *, feather: float = DEFAULT_FEATHER,
                 method: str = "difference") -> np.ndarray:
    """The photo with the face's edit composed in.

    Args:
        photo: the whole upright photo, uint8 (H, W, 3).
        matrix: the face's alignment, photo pixels -> aligned pixels at the renders' size.
        before, after: the renders (uint8 (R, R, 3)) of the unmoved and the moved latent,
            both with the photo's adapter.
        feather: the mask's soft edge, in fractions of the aligned side.
        method: ``"difference"`` (the default; see the module's docstring), ``"paste"`` or
            ``"roundtrip"`` (kept for comparison).

    Returns:
        a new uint8 (H, W, 3) photo, equal to ``photo`` outside the face mask; with
        ``"difference"``, ``photo`` itself when ``before`` and ``after`` are equal.

    Raises:
        ValueError: naming the bad argument.
    """
    m, r = _check(photo, matrix, before, after)
    if method not in METHODS:
        raise ValueError(f"method: one of {', '.join(METHODS)}, got {method!r}")
    if np.array_equal(before, after) and method == "difference":
        return photo
    h, w = photo.shape[:2]
    inverse = invert_affine(m)
    x0, y0, x1, y1 = face_region(inverse, r, w, h)
    if x1 <= x0 or y1 <= y0:
        return photo
    rw, rh = x1 - x0, y1 - y0
    # region pixel (u, v) -> aligned pixel: matrix applied to (u + x0, v + y0)
    to_aligned = m.copy()
    to_aligned[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    flags = cv2.WARP_INVERSE_MAP

    def into_region(img: np.ndarray, interp: int) -> np.ndarray:
        return cv2.warpAffine(np.ascontiguousarray(img), to_aligned, (rw, rh),
                              flags=interp | flags, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=0)

    mask = into_region(face_mask(r, feather), cv2.INTER_LINEAR)[..., None]
    region = photo[y0:y1, x0:x1].astype(np.float32)
    if method == "difference":
        diff = after.astype(np.float32) - before.astype(np.float32)
        new = region + mask * into_region(diff, cv2.INTER_CUBIC)
    elif method == "paste":
        new = region * (1 - mask) + mask * into_region(after.astype(np.float32),
                                                       cv2.INTER_CUBIC)
    else:  # roundtrip: the face at its native resolution in the aligned frame and back
        scale = math.sqrt(abs(float(np.linalg.det(m[:, :2]))))  # aligned px per photo px
        n = max(r, min(2048, round(r / scale)))
        k = n / r
        native = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5]]) @ \
            np.vstack([to_aligned, [0, 0, 1]])  # region -> native aligned
        face = cv2.warpAffine(photo[y0:y1, x0:x1], native, (n, n), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        diff = after.astype(np.float32) - before.astype(np.float32)
        face += cv2.resize(diff, (n, n), interpolation=cv2.INTER_CUBIC)
        back = cv2.warpAffine(face, native, (rw, rh), flags=cv2.INTER_LINEAR | flags,
                              borderMode=cv2.BORDER_REPLICATE)
        new = region * (1 - mask) + mask * back
    out = photo.copy()
    keep = mask[..., 0] > 0
    out[y0:y1, x0:x1][keep] = np.clip(np.rint(new[keep]), 0, 255).astype(np.uint8)
    return out
