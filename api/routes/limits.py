"""The service's limits on a request's faces: count, size, response bytes and memory."""

from __future__ import annotations

from api.memory import check_memory, faces_memory
from api.schemas import MAX_STEPS
from api.settings import Settings

#: encoded bytes per output pixel of a face, at the upper end of what the shipped generator's
#: faces take (PNG 0.95-1.2, JPEG q92 about 0.15, WebP about 0.1, measured at 256-384 px)
BYTES_PER_PIXEL = {"png": 1.25, "jpeg": 0.25, "webp": 0.2}


def max_faces(settings: Settings, count_field: str = "count") -> int:
    """The most faces one request may ask for in ``count_field`` (``count`` of /generate,
    ``steps`` of /interpolate, which also stays within MAX_STEPS)."""
    return min(settings.max_count, MAX_STEPS) if count_field == "steps" else settings.max_count


def check_limits(settings: Settings, size: int | None, count: int = 1, fmt: str = "png",
                 native: int = 64, count_field: str = "count", extra_memory: float = 0.0
                 ) -> float:
    """ValueError (-> 422) when a request exceeds this service's configured limits: face
    count (the request's ``count_field``), image size, the response's size (``count``
    faces of ``size`` px, or ``native`` px, in ``fmt``, base64) and the memory the request
    may use (:func:`api.memory.faces_memory` plus ``extra_memory``), estimated before any
    work is done. These are the only upper limits of those fields (the schema states them).
    Returns the memory estimate (bytes), for admission (``RequestJobs.memory``)."""
    most = max_faces(settings, count_field)
    if count > most:
        raise ValueError(f"{count_field}: at most {most} faces per request on this service")
    if size is not None and size > settings.max_size:
        raise ValueError(f"size: at most {settings.max_size} pixels on this service")
    px = size or native
    estimate = count * px * px * BYTES_PER_PIXEL.get(fmt, 1.25) * 4 / 3
    if estimate > settings.max_response_bytes:
        fields = "size" if count == 1 else f"{count_field}, size"  # what the client can lower
        faces = (f"1 {fmt} face of {px} px comes" if count == 1
                 else f"{count} {fmt} faces of {px} px come")
        raise ValueError(
            f"{fields}: {faces} to about "
            f"{_amount(estimate)}, above this service's response limit of "
            f"{_amount(settings.max_response_bytes)}; ask for fewer or smaller faces, or "
            "jpeg/webp")
    memory = faces_memory(count, size, native, settings.max_batch, fmt) + extra_memory
    fields = "size" if count == 1 else f"{count_field}, size"
    what = f"1 face of {px} px" if count == 1 else f"{count} faces of {px} px"
    return check_memory(settings, memory, fields, what)


def _amount(n: float) -> str:
    """Bytes as whole MiB, or KiB below 1 MiB."""
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"
