"""Device selection, the one meaning of a device setting for every layer: always passed in
explicitly, never a global. ``None`` and ``"auto"`` mean the same: CUDA when available, else
the CPU."""

from __future__ import annotations

import re

import torch

_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?|mps|auto)$")


def resolve_device(spec: str | torch.device | None = "cpu") -> torch.device:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` into a torch.device.

    ``"auto"`` (or ``None``) picks CUDA when available, else CPU. Asking for CUDA on a
    machine without it raises ``ValueError`` naming the ``device`` setting rather than failing
    later.
    """
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if not _DEVICE_RE.match(spec):
        raise ValueError(f"device: expected cpu, cuda, cuda:N, mps or auto, got {spec!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {spec!r} requested but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device: {spec!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device: 'mps' requested but MPS is not available here")
    return dev


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads for this process (its entry point's call, never a
    library's: the setting is process-wide)."""
    if threads < 1:
        raise ValueError(f"threads: must be >= 1, got {threads}")
    torch.set_num_threads(threads)
