"""Image encoding for the API and CLI: PNG / JPEG / WebP bytes, optional bounded resize."""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image

ImageFormat = Literal["png", "jpeg", "webp"]
FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
MIN_SIZE = 16
MAX_SIZE = 1024
RESAMPLE = {"nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


def check_size(size: int | None, name: str = "size") -> int | None:
    """Return ``size`` if None or an integer in [MIN_SIZE, MAX_SIZE], else raise ValueError."""
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"{name}: must be an integer in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    return size


def resize(image: np.ndarray, size: int | None, resample: str = "lanczos") -> Image.Image:
    """uint8 (H, W, 3) -> PIL image, resized to size x size if ``size`` is given.

    ``resample="nearest"`` keeps pixels crisp for display upscales; ``"lanczos"`` is smooth.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if resample not in RESAMPLE:
        raise ValueError(f"resample: must be one of {', '.join(RESAMPLE)}, got {resample!r}")
    pil = Image.fromarray(image, "RGB")
    size = check_size(size)
    if size is not None and (size, size) != pil.size:
        pil = pil.resize((size, size), RESAMPLE[resample])
    return pil


def encode_image(image: np.ndarray, fmt: str = "png", size: int | None = None,
                 quality: int = 92, resample: str = "lanczos") -> bytes:
    """Encode a uint8 (H, W, 3) image to PNG, JPEG or WebP bytes (deterministic)."""
    if fmt not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    pil = resize(image, size, resample)
    buf = io.BytesIO()
    if fmt == "png":
        pil.save(buf, format="PNG", compress_level=1)
    elif fmt == "jpeg":
        pil.save(buf, format="JPEG", quality=quality)
    else:
        pil.save(buf, format="WEBP", quality=quality, method=4)
    return buf.getvalue()


def load_image(path: str) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3); raise ValueError naming the file if unreadable."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"image {path}: cannot be read ({exc})") from None
