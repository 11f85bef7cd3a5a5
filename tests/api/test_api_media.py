"""Image encoding placement: small answers encode on the event loop, large ones in a thread."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from api.media import INLINE_PIXELS, encode_b64, off_loop


def _where(images: np.ndarray, size: int | None) -> tuple[str, list[str]]:
    seen: list[str] = []

    def enc(imgs: np.ndarray) -> list[str]:
        seen.append(threading.current_thread().name)
        return encode_b64(imgs, "png", size)

    async def run() -> tuple[str, list[str]]:
        loop_thread = threading.current_thread().name
        out = await off_loop(images, size, enc, images)
        return ("loop" if seen[0] == loop_thread else "pool"), out

    return asyncio.run(run())


def test_small_answer_encodes_inline_large_in_the_pool() -> None:
    face = np.random.default_rng(0).integers(0, 255, (1, 64, 64, 3), dtype=np.uint8)
    where, out = _where(face, None)
    assert where == "loop" and out == encode_b64(face, "png", None)
    many = np.repeat(face, 64, axis=0)  # 64 faces: more pixels than INLINE_PIXELS
    assert INLINE_PIXELS < 64 * 64 * 64
    assert _where(many, None)[0] == "pool"
    assert _where(face, 512)[0] == "pool"  # one face, upscaled
