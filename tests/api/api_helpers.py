"""Helpers shared by the API tests (imported as a plain module from tests/api)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

from tlgan.testing import TINY_LATENT


def post_raw(client: Any, path: str, text: str, **headers: str) -> Any:
    """POST a raw JSON text (e.g. with NaN literals) with a JSON content type."""
    return client.post(path, content=text.encode(),
                       headers={"content-type": "application/json", **headers})


def decode_image(b64: str) -> np.ndarray:
    """Base64 PNG/JPEG/WebP -> uint8 (H, W, 3)."""
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        return np.asarray(im.convert("RGB"))


def zeros_latent(value: float = 0.1) -> list[float]:
    """A valid latent for the tiny generator."""
    return [value] * TINY_LATENT


def detail(resp: Any) -> str:
    """The error's one-line message (asserting the error body shape)."""
    body = resp.json()
    assert set(body) == {"detail", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in body["detail"]
    return str(body["detail"])
