"""Image encoding placement: small answers encode on the event loop, large ones in a thread."""

from __future__ import annotations

import asyncio
import threading
import time

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


def test_big_encodes_run_at_most_limit_at_once() -> None:
    """Encodes over INLINE_PIXELS go to the thread pool, at most ``limit`` at once (64 faces
    at 1024 px each held tens of MB: 64 requests at once grew the process by 1.8 GB)."""
    running = 0
    most = 0
    lock = threading.Lock()

    def encode() -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return "ok"

    big = np.zeros((2, 128, 128, 3), np.uint8)
    assert 2 * 128 * 128 <= INLINE_PIXELS < 2 * 512 * 512

    async def main() -> list[str]:
        limit = asyncio.Semaphore(2)
        return await asyncio.gather(*(off_loop(big, 512, encode, limit=limit)
                                      for _ in range(8)))

    assert asyncio.run(main()) == ["ok"] * 8
    assert most == 2
    most = 0

    async def unbounded() -> list[str]:
        return await asyncio.gather(*(off_loop(big, 512, encode) for _ in range(8)))

    asyncio.run(unbounded())
    assert most > 2  # without a limit they pile up (the thread pool has 40 threads)
