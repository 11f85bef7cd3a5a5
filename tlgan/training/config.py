"""The settings of ``tlgan generator train`` (:class:`GeneratorTrainConfig`) and the seeds of its
independent random streams; the recipe they describe is in :mod:`tlgan.training.trainer`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlgan.training.augment import parse_policy
from tlgan.training.networks import D_ARCHS, D_NORMS, RESOLUTION

LOSSES = ("hinge", "ns")
# Seed offsets of the independent random streams (data, latents, augmentation, ...).
_STREAMS = {"data": 1, "z": 2, "aug": 3, "fixed": 4, "eval": 5, "bn": 6, "subset": 7}


def _stream_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + _STREAMS[name] * 7_919) % (2**63)


@dataclass
class GeneratorTrainConfig:
    """Everything ``train`` needs; the CLI options map one to one."""

    data: str
    out: str
    resolution: int = 64
    iterations: int = 30_000
    batch: int = 128
    seed: int = 0
    device: str = "cpu"
    ngf: int = 64
    ndf: int = 64
    loss: str = "hinge"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999
    d_arch: str = "dcgan"
    d_norm: str = "spectral"
    augment: str = "translation"
    flip: bool = True
    amp: bool = False
    bn_batches: int = 8
    sample_every: int = 1000
    checkpoint_every: int = 1000
    eval_every: int = 2500
    fd_samples: int = 2000
    eval_raw: bool = True  # also score the raw generator (measures the EMA's gain)
    extractor: str | None = None  # None: registry default; "none": no metric
    work: str | None = None
    resume: bool = False
    cache: str | None = None
    name: str | None = None
    progress: bool = True
    log_every: int = 50
    time_limit: float | None = None  # seconds of this process's loop; then stop and export

    def work_dir(self) -> Path:
        return Path(self.work) if self.work else Path(str(self.out).rstrip("/\\") + ".work")

    def metric_enabled(self) -> bool:
        return (self.extractor or "").lower() != "none"

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if self.resolution != RESOLUTION:
            raise ValueError(
                f"resolution: the DCGAN generator renders {RESOLUTION}x{RESOLUTION} images, "
                f"got {self.resolution}"
            )
        positive = {"iterations": self.iterations, "ngf": self.ngf, "ndf": self.ndf,
                    "sample_every": self.sample_every, "checkpoint_every": self.checkpoint_every,
                    "eval_every": self.eval_every, "log_every": self.log_every}
        for name, val in positive.items():
            if val < 1:
                raise ValueError(f"{name}: must be >= 1, got {val}")
        if self.batch < 2:
            raise ValueError(f"batch: must be >= 2 (BatchNorm needs a batch), got {self.batch}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit: must be a positive number of seconds, got "
                             f"{self.time_limit}")
        if self.bn_batches < 0:
            raise ValueError(f"bn_batches: must be >= 0, got {self.bn_batches}")
        if self.fd_samples < 2:
            raise ValueError(f"fd_samples: must be >= 2, got {self.fd_samples}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss: must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name, lr in (("lr_g", self.lr_g), ("lr_d", self.lr_d)):
            if not (lr > 0 and math.isfinite(lr)):
                raise ValueError(f"{name}: must be a positive number, got {lr}")
        for name, b in (("beta1", self.beta1), ("beta2", self.beta2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{name}: must be in [0, 1), got {b}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay: must be in [0, 1), got {self.ema_decay}")
        parse_policy(self.augment)
        if self.d_arch not in D_ARCHS:
            raise ValueError(f"d_arch: must be one of {', '.join(D_ARCHS)}, got {self.d_arch!r}")
        if self.d_norm not in D_NORMS:
            raise ValueError(f"d_norm: must be one of {', '.join(D_NORMS)}, got {self.d_norm!r}")

    def recipe(self) -> dict[str, Any]:
        """The choices that define the training run (recorded and checked on resume)."""
        return {
            "loss": self.loss, "d_arch": self.d_arch, "d_norm": self.d_norm, "ngf": self.ngf,
            "ndf": self.ndf, "batch": self.batch, "seed": self.seed,
            "lr_g": self.lr_g, "lr_d": self.lr_d, "betas": [self.beta1, self.beta2],
            "ema_decay": self.ema_decay, "ema_bn": "recalibrated" if self.bn_batches else "copied",
            "augment": ",".join(parse_policy(self.augment)) or "none", "flip": self.flip,
            "d_steps_per_g_step": 1, "amp": "bf16" if self.amp else "none",
        }


__all__ = ["LOSSES", "GeneratorTrainConfig"]
