"""Device selection, the one meaning of a device setting for every layer: always passed in
explicitly, never a global. ``None`` and ``"auto"`` mean the same: CUDA when available, else
the CPU. Also the memory format convolutional models use on a device
(:func:`memory_format`) and the torch thread count entry points set (:func:`resolve_threads`)."""

from __future__ import annotations

import os
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


def default_threads() -> int:
    """Torch intra-op threads when none is asked for: one per CPU core this process may run
    on, minus one (left for HTTP, image decoding and encoding), at least 1.

    ``tlgan serve`` (``TLGAN_TORCH_THREADS=0``) and every ``tlgan`` command that runs models
    (``--threads auto``) use it. Torch's own default, every core, oversubscribes a busy
    machine: ``tlgan encode`` of 4 photos took 59.6 s on a loaded 2-core machine, 6.6 s with
    one thread (issue #23).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def resolve_threads(threads: int | None) -> int:
    """``threads``, or :func:`default_threads` for ``None`` or 0 ("auto")."""
    if threads is None or threads == 0:
        return default_threads()
    if threads < 0:
        raise ValueError(f"threads: must be >= 1 (or 0 for auto), got {threads}")
    return threads


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads for this process (its entry point's call, never a
    library's: the setting is process-wide)."""
    if threads < 1:
        raise ValueError(f"threads: must be >= 1, got {threads}")
    torch.set_num_threads(threads)


# oneDNN's AVX2 convolution kernels (CPUs without AVX-512, e.g. AMD EPYC) corrupt memory (a
# hang, a segfault or "free(): invalid next size") in the backward pass of a stride-2 1x1
# convolution over channels_last tensors with few input channels: measured with
# ONEDNN_MAX_CPU_ISA=AVX2 on torch 2.13.0 (20 backward passes, batch 8, 32x32), 2 to 6 input
# channels hang, 7 to 12, 16, 20, 24, 40 and 64 pass; AttributeNet trains at widths 8-64 and
# at its default 32-256 (issue #23). channels_last still pays on the CPU at ordinary widths
# (the extractor at its default widths: `python bench/memory_format.py`), so it is kept there
# from this many channels up.
CPU_CHANNELS_LAST_MIN = 8


def memory_format(device: torch.device, min_channels: int | None = None) -> torch.memory_format:
    """The memory format for a convolutional model's weights and inputs on ``device``.

    CUDA: channels_last. CPU: channels_last only when the caller vouches for the model there
    by passing ``min_channels``, the fewest input channels of any of its convolutions after
    the image's own, and that is at least :data:`CPU_CHANNELS_LAST_MIN`; else contiguous.
    Other devices (MPS): contiguous. A model and its inputs must use the same format: one
    channels_last input is enough for oneDNN to take the channels_last kernels.
    """
    if device.type == "cuda":
        return torch.channels_last
    if (device.type == "cpu" and min_channels is not None
            and min_channels >= CPU_CHANNELS_LAST_MIN):
        return torch.channels_last
    return torch.contiguous_format
