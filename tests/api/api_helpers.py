"""Helpers shared by the API tests (imported as a plain module from tests/api)."""

from __future__ import annotations

import base64
import io
import threading
import time
from typing import Any

import numpy as np
from PIL import Image

from tlgan.pipeline import Pipeline
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


class Gate:
    """A pipeline whose renders wait until the test opens the gate (or a delay passes)."""

    def __init__(self, inner: Pipeline, delay: float | None = None) -> None:
        self._inner = inner
        self.delay = delay
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.rendered = 0
        self._lock = threading.Lock()

    def render_and_label(self, z: np.ndarray, with_features: bool = True) -> Any:
        self.entered.set()
        if self.delay is not None:
            time.sleep(self.delay)
        else:
            assert self.gate.wait(30)
        with self._lock:
            self.rendered += len(z)
        return self._inner.render_and_label(z, with_features)

    def label_latents(self, z: np.ndarray, space: str | None = None) -> np.ndarray:
        probs = self.render_and_label(z, True)[1]
        assert probs is not None
        return np.asarray(probs)

    def generate_conditioned(self, *args: Any, **kwargs: Any) -> Any:
        return Pipeline.generate_conditioned(self, *args, **kwargs)  # type: ignore[arg-type]

    def condition(self, *args: Any, **kwargs: Any) -> Any:
        return Pipeline.condition(self, *args, **kwargs)  # type: ignore[arg-type]

    def conditioned_starts(self, *args: Any, **kwargs: Any) -> Any:
        return Pipeline.conditioned_starts(self, *args, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
