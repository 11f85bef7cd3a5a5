"""Images for every layer: decoding (file or bytes -> centre-cropped square uint8 array) and
encoding for the API and CLI (PNG / JPEG / WebP bytes, optional bounded resize)."""

from __future__ import annotations

import io
import os
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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


# --------------------------------------------------------------------------------------------
# Decoding: one path from file or bytes to a centre-cropped square uint8 array


DECODE_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "box": Image.Resampling.BOX}


def center_crop_square(img: Image.Image) -> Image.Image:
    """Centre-crop a PIL image to a square (a no-op for square images)."""
    w, h = img.size
    if w == h:
        return img
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def decode_image(source: bytes | str | os.PathLike[str], size: int | None = None, *,
                 resample: str = "bilinear") -> np.ndarray:
    """Decode image bytes or an image file to uint8 (H, W, 3) RGB, centre-cropped square.

    With ``size`` it is resized to ``size`` x ``size``: ``"bilinear"`` is PIL's antialiasing
    bilinear filter (the same filter as ``torch.nn.functional.interpolate(..., antialias=True)``;
    a JPEG is first downscaled in the DCT domain to no less than twice the target), ``"box"``
    an exact area average of the full-size image.

    Raises:
        OSError / ValueError: from PIL when the file is missing or not a readable image.
    """
    if resample not in DECODE_FILTERS:
        raise ValueError(f"resample: must be one of {', '.join(DECODE_FILTERS)}, "
                         f"got {resample!r}")
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        if size is not None and resample == "bilinear" and im.format == "JPEG":
            # DCT-domain downscale to no less than twice the target: fast and lossless enough.
            im.draft("RGB", (2 * size, 2 * size))
        img = center_crop_square(im.convert("RGB"))
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), DECODE_FILTERS[resample])
    return np.asarray(img, dtype=np.uint8)


def load_image(path: str | os.PathLike[str], size: int | None = None) -> np.ndarray:
    """Decode an image file to uint8 (H, W, 3) RGB, centre-cropped square, resized (bilinear)
    to ``size`` x ``size`` when given: :func:`decode_image` of a file.

    Raises:
        OSError / ValueError: from PIL when the file is missing or not a readable image.
    """
    return decode_image(path, size)


# --------------------------------------------------------------------------------------------
# Photos: uploads to encode, checked before they are decoded

#: the formats a photo may come in (PIL's names)
#: Pillow's names of the photo formats :func:`read_photo` accepts. MPO is the JPEG variant
#: many phones and cameras write (a JPEG with a second image, e.g. a depth map or preview,
#: appended): its first frame is the photo.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP")
#: what an error says is accepted
ACCEPTED = "JPEG, PNG or WebP"
#: ISO-BMFF brands (bytes 8-12 of the file) of formats phones write that are not accepted
_BMFF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC",
                b"heis": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF",
                b"avis": "AVIF"}


def _unaccepted_kind(head: bytes) -> str | None:
    """The name of a known photo format Pillow cannot read here (HEIC/HEIF, AVIF), from the
    file's first bytes; None if it is none of them."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _BMFF_BRANDS.get(head[8:12])
    return None
#: default most pixels (width x height) of a photo, checked before decoding
MAX_PHOTO_PIXELS = 40_000_000


def _first_bytes(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(16)
    except OSError:
        return b""


def open_photo(source: bytes | str | os.PathLike[str], max_pixels: int = MAX_PHOTO_PIXELS,
               *, name: str = "image") -> Image.Image:
    """A photo opened and checked from its header (format, pixel count, not empty), before
    any pixel is decoded; the caller closes it.

    Raises:
        ValueError: naming ``name``: not an image, another format, too many pixels.
    """
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    except UnidentifiedImageError:
        head = source[:16] if isinstance(source, bytes) else _first_bytes(source)
        kind = _unaccepted_kind(head)
        if kind is not None:
            raise ValueError(f"{name}: {kind} images are not accepted; send a {ACCEPTED} "
                             "(most phones can export or share a photo as JPEG)") from None
        raise ValueError(f"{name}: not a {ACCEPTED} image (cannot identify the file; HEIC, "
                         "AVIF, GIF, TIFF and other formats are not accepted)") from None
    except Image.DecompressionBombError:  # PIL's own cap (2 x MAX_IMAGE_PIXELS) hit first
        bound = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise ValueError(f"{name}: more than {bound:,} pixels, above this service's limit of "
                         f"{min(bound, max_pixels):,}; send a smaller photo") from None
    except OSError as exc:
        raise ValueError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    w, h = im.size
    problem = None
    if im.format not in PHOTO_FORMATS:
        problem = f"{name}: {im.format} images are not accepted; send a {ACCEPTED}"
    elif w * h > max_pixels:
        problem = (f"{name}: {w}x{h} is {w * h:,} pixels, above this service's limit of "
                   f"{max_pixels:,}; send a smaller photo")
    elif w < 1 or h < 1:
        problem = f"{name}: the image is empty ({w}x{h})"
    if problem is not None:
        im.close()
        raise ValueError(problem)
    return im


def corrupt_photo(name: str, fmt: str | None, exc: BaseException) -> ValueError:
    """The error for a photo whose data Pillow could not decode (truncated or corrupt)."""
    return ValueError(f"{name}: the {fmt} file is truncated or corrupt "
                      f"({' '.join(str(exc).split())[:120]})")


def read_photo(source: bytes | str | os.PathLike[str], size: int,
               max_pixels: int = MAX_PHOTO_PIXELS, *, name: str = "image") -> np.ndarray:
    """Decode a face photo (JPEG, PNG or WebP; MPO, a phone's JPEG, by its first frame) to
    uint8 (size, size, 3) RGB.

    The photo is turned upright by its EXIF orientation, centre-cropped to a square (a
    non-square photo loses the ends of its longer side) and area-resized to ``size``. Its
    pixel count is checked from the header, before any pixel is decoded
    (:func:`open_photo`).

    Raises:
        ValueError: naming ``name``: not an image, another format, too many pixels, or a
            truncated/corrupt file.
    """
    with open_photo(source, max_pixels, name=name) as im:
        w, h = im.size
        try:
            if im.format in ("JPEG", "MPO"):  # MPO: its first frame, a JPEG
                s = min(w, h)
                # DCT-domain downscale first, to no less than twice the crop's target
                im.draft("RGB", (max(1, w * 2 * size // s), max(1, h * 2 * size // s)))
            upright = ImageOps.exif_transpose(im)
            img = center_crop_square(upright.convert("RGB"))
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BOX)
            return np.asarray(img, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
            raise corrupt_photo(name, im.format, exc) from None
