"""Memory a single request may use: a documented estimate per request kind, checked against
the ``max_request_memory_mb`` setting before any work is done (422 naming the field that
drives it), and carried with the request's model job so that admission
(:class:`api.batching.Batcher`, ``max_memory_mb``) keeps the sum over admitted but
unfinished jobs under a budget.

The estimates (bytes; ``native`` is the generator's resolution, ``size`` the output's):

* faces (/generate, /edit, /interpolate, /encode's answer): the generator's working memory
  for one forward pass of ``min(count, max_batch)`` faces (:data:`FORWARD_BYTES_PER_PIXEL`
  per native pixel), plus ``count`` uint8 faces kept (``native² x 3``), one face being
  resized and encoded (``size² x`` :data:`RESIZE_BYTES_PER_PIXEL`), and ``count`` encoded
  answers twice (the base64 strings and the response body: ``size² x`` bytes per pixel of
  the format ``x 4/3``);
* /axes/fit: the examples are embedded ``max_batch`` at a time: the forward memory of one
  chunk plus, per example, its latent and embedding (float32) and its uint8 face;
* /encode's upload: the decoded photo's pixels (uint8 RGB plus a float32 copy), added to
  its answer's faces;
* /photo/edit: :data:`api.routes.photo.PHOTO_BYTES_PER_PIXEL` per pixel of the photo (from
  its header, before decoding);
* /axes/discover with method pca: :func:`tlgan.discover.pca_memory` (the activation matrix
  N x D float32, the N x N float64 Gram matrix, one block of columns and one chunk of
  forward passes).

The figures are upper ends: ``python -m bench.abuse`` measured the added peak RSS of
/generate with 64 faces of 64 px at +58 MB (estimate 74 MiB), /axes/fit with 500 examples
+61 MB (estimate 86 MiB), PCA discovery +150 to 280 MB (estimate 249 MiB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.settings import Settings

MIB = 2**20
#: the generator's working memory per face and per native output pixel in one forward pass
#: (activations of every layer, float32 output, labelling): 1.1 MiB per 64 px face, from
#: bench/abuse.py's /generate of 64 faces (+58 MB peak RSS) rounded up
FORWARD_BYTES_PER_PIXEL = 288
#: one face being resized and encoded: uint8 source and result, PIL's copies, the encoder's
#: buffers
RESIZE_BYTES_PER_PIXEL = 16
#: encoded bytes per output pixel, the upper end per format (as api.routes.limits's
#: response estimate)
ENCODED_BYTES_PER_PIXEL = {"png": 1.25, "jpeg": 0.25, "webp": 0.2}
#: float32 numbers per example of /axes/fit besides its face: latent + embedding, generously
FIT_FLOATS_PER_EXAMPLE = 4096


def limit_bytes(settings: Settings) -> int:
    """The most memory one request may use (bytes)."""
    return settings.max_request_memory_mb * MIB


def faces_memory(count: int, size: int | None, native: int, max_batch: int,
                 fmt: str = "png") -> float:
    """Estimated bytes of rendering ``count`` faces and answering them at ``size`` px."""
    px = size or native
    forward = min(count, max_batch) * native * native * FORWARD_BYTES_PER_PIXEL
    kept = count * native * native * 3
    encoded = 2 * count * px * px * ENCODED_BYTES_PER_PIXEL.get(fmt, 1.25) * 4 / 3
    return forward + kept + px * px * RESIZE_BYTES_PER_PIXEL + encoded


def fit_memory(examples: int, native: int, max_batch: int) -> float:
    """Estimated bytes of /axes/fit with ``examples`` (embedded ``max_batch`` at a time)."""
    forward = min(examples, max_batch) * native * native * FORWARD_BYTES_PER_PIXEL
    return forward + examples * (native * native * 3 + 4 * FIT_FLOATS_PER_EXAMPLE)


def upload_memory(pixels: int) -> float:
    """Estimated bytes of a decoded upload of ``pixels`` (uint8 RGB plus a float32 copy)."""
    return pixels * (3 + 3 * 4)


def check_memory(settings: Settings, estimate: float, fields: str, what: str) -> float:
    """ValueError (-> 422) naming ``fields`` when ``estimate`` bytes exceed the memory one
    request may use; else the estimate (for admission)."""
    limit = limit_bytes(settings)
    if estimate > limit:
        raise ValueError(
            f"{fields}: {what} would take about {estimate / MIB:.0f} MiB of memory, above "
            f"this service's limit of {settings.max_request_memory_mb} MiB per request "
            "(max_request_memory_mb)")
    return estimate
