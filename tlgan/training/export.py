"""The end of ``tlgan generator train``: the best snapshot written as a ``generator-weights``
folder (weights, a samples grid, ``config.json``), and the image-grid helpers it shares with
the loop's sample grids.

The export reads the finished run through :class:`FinishedRun` (what the trainer exposes), so
this module does not import the trainer: the trainer imports it.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from tlgan.generators import load_generator
from tlgan.training.config import GeneratorTrainConfig
from tlgan.training.data import ImageSet
from tlgan.training.frechet import Reference
from tlgan.training.networks import LATENT_SIZE, RESOLUTION, build_generator
from tlgan_base.artifact import write_bytes_atomic
from tlgan_base.trainloop import Patience, export_artifact


class FinishedRun(Protocol):
    """What :func:`export` reads of a finished training run."""

    @property
    def cfg(self) -> GeneratorTrainConfig: ...
    @property
    def images(self) -> ImageSet: ...
    @property
    def reference(self) -> Reference | None: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def cuda(self) -> bool: ...
    @property
    def z_fixed(self) -> torch.Tensor: ...
    @property
    def best_state(self) -> dict[str, torch.Tensor] | None: ...
    @property
    def best(self) -> Patience: ...
    @property
    def best_weights(self) -> str: ...
    @property
    def history(self) -> list[dict[str, Any]]: ...
    @property
    def iteration(self) -> int: ...
    @property
    def stopped_early(self) -> bool: ...
    @property
    def wall_time_s(self) -> float: ...
    @property
    def train_time_s(self) -> float: ...
    @property
    def log(self) -> Callable[[str], None]: ...


@dataclass
class TrainResult:
    out: Path
    iterations: int
    best_iteration: int
    fd_best: float | None
    fd_floor: float | None
    wall_time_s: float
    iterations_per_s: float
    config: dict[str, Any] = field(default_factory=dict)


def image_grid(images: np.ndarray, nrow: int = 8, pad: int = 2) -> np.ndarray:
    """uint8 (N, H, W, 3) -> one uint8 grid image with ``nrow`` columns."""
    n, h, w, c = images.shape
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[y:y + h, x:x + w] = img
    return grid


def save_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8 (H, W, 3) image as a PNG file, atomically."""
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())


def tanh_images_to_uint8(x: torch.Tensor) -> np.ndarray:
    """G output in [-1, 1] (N, 3, H, W) -> uint8 (N, H, W, 3)."""
    u8 = ((x.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return u8.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def export(trainer: FinishedRun) -> TrainResult:
    """Write the best snapshot as a ``generator-weights`` folder and check it loads."""
    cfg = trainer.cfg
    out = Path(cfg.out)
    assert trainer.best_state is not None
    module = build_generator(cfg.ngf)
    module.load_state_dict(trainer.best_state)
    module.eval()
    with torch.inference_mode():
        samples = tanh_images_to_uint8(module(trainer.z_fixed.cpu()))
    ips = trainer.iteration / trainer.train_time_s if trainer.train_time_s > 0 else 0.0
    ref = trainer.reference
    config: dict[str, Any] = {
        "kind": "generator-weights",
        "name": cfg.name or out.name,
        "architecture": {"name": "dcgan", "kwargs": {"nz": LATENT_SIZE, "ngf": cfg.ngf, "nc": 3}},
        "latent_size": LATENT_SIZE,
        "resolution": RESOLUTION,
        "value_range": [-1.0, 1.0],
        "created_by": "tlgan generator train",
        "data_checksum": trainer.images.source_sha256,
        "data": trainer.images.describe(),
        "iterations": trainer.iteration,
        "iterations_target": cfg.iterations,
        "stopped_by_time_limit": trainer.stopped_early,
        "snapshot_iteration": trainer.best.best_at,
        "snapshot_weights": trainer.best_weights,
        "batch": cfg.batch,
        "seed": cfg.seed,
        "recipe": cfg.recipe(),
        "device": str(trainer.device),
        "device_name": torch.cuda.get_device_name(trainer.device) if trainer.cuda else "cpu",
        "torch_version": torch.__version__,
        "wall_time_s": round(trainer.wall_time_s, 2),
        "iterations_per_s": round(ips, 3),
        "metrics": {
            "fd_best": trainer.best.best,
            "fd_floor": None if ref is None else ref.floor,
            "fd_per_snapshot": trainer.history,
            **({} if ref is None else ref.describe()),
        },
    }
    best_state = trainer.best_state

    def write_files(tmp: Path) -> None:
        save_file({k: v.contiguous() for k, v in best_state.items()},
                  str(tmp / "generator.safetensors"), metadata={"format": "pt"})
        save_png(tmp / "samples.png", image_grid(samples))

    export_artifact(out, config, write_files)
    gen = load_generator(str(out), device="cpu")
    check = gen.render(trainer.z_fixed[:4].cpu().numpy())
    if check.shape != (4, RESOLUTION, RESOLUTION, 3):
        raise RuntimeError(f"exported generator renders {check.shape}, expected 64x64 faces")
    fd = trainer.best.best
    trainer.log(f"wrote {out} ({trainer.best_weights} snapshot of iteration "
                f"{trainer.best.best_at}"
                + ("" if fd is None else f", FD {fd:.2f}") + ")")
    return TrainResult(out=out, iterations=trainer.iteration,
                       best_iteration=trainer.best.best_at, fd_best=fd,
                       fd_floor=None if ref is None else ref.floor,
                       wall_time_s=trainer.wall_time_s, iterations_per_s=ips,
                       config=json.loads((out / "config.json").read_text(encoding="utf-8")))


__all__ = ["FinishedRun", "TrainResult", "export", "image_grid", "save_png",
           "tanh_images_to_uint8"]
