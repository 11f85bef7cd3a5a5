"""``tlgan sr train``: train the face upscaler on real crops.

Recipe (defaults; each is recorded in the weights folder's ``config.json``):

- Data: the crops of a CelebA-format directory at ``resolution`` px (the subset's are 128
  px): partition 0 trains, the first ``val_images`` of partition 1 stop early. The upscaler
  never sees the generator: it learns real faces, from inputs degraded to look like the
  generator's output (:mod:`tlgan.upscale.degrade`).
- Each step takes ``batch`` random ``patch`` px squares of training crops (random
  horizontal flips), makes (degraded low-resolution input, target) pairs and takes one Adam
  step on the Charbonnier loss (a smooth L1) between the network's output and the target.
  Adam (lr ``lr``, cosine decay to 5% over ``steps``).
- Every ``eval_every`` steps the network is scored on the validation crops, whole, with
  degradations drawn once from a fixed seed (``val_psnr``: mean PSNR of the 8-bit outputs);
  the best snapshot is kept and training stops early after ``patience`` evaluations without
  improvement (or at ``steps``, or after ``max_minutes``). The clean-input PSNR and
  Lanczos's on the same crops are logged beside it.

Work folder (``<out>.work`` unless given): ``checkpoint.safetensors`` + ``state.json``,
``best.safetensors``, ``log.jsonl``, the decoded crops ``images.npz``. ``resume=True``
continues from the checkpoint (same recipe; ``steps`` may change).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlgan.training.data import Partitions, load_partitions
from tlgan.training.export import image_grid, save_png
from tlgan.training.run_config import BEST, IMAGES_CACHE, PartitionRunConfig, images_to_float
from tlgan.upscale.degrade import DEGRADATIONS, downscale, make_pair
from tlgan.upscale.fidelity import psnr, ssim
from tlgan.upscale.sr_net import ARCHITECTURE, KIND, WEIGHTS_FILE, SRConfig, SRNet, count_parameters
from tlgan.upscale.upscaler import lanczos_upscale, to_uint8_images
from tlgan_base import trainloop
from tlgan_base.artifact import ArtifactError, write_json_atomic
from tlgan_base.celeba_layout import TRAIN, VAL
from tlgan_base.devices import resolve_device


@dataclass(kw_only=True)
class UpscalerTrainConfig(PartitionRunConfig):
    """Everything a run depends on (see the module docstring for the recipe; the
    fields every partition-trained run has are :class:`PartitionRunConfig`'s)."""

    steps: int = 6000
    batch: int = 16
    patch: int = 64
    resolution: int = 128
    scale: int = 2
    channels: int = 48
    blocks: int = 6
    lr: float = 1e-3
    val_images: int = 256

    def validate(self) -> None:
        self.check_positive(("steps", "batch", "patch", "resolution", "scale", "channels",
                             "blocks", "eval_every", "patience", "val_images",
                             "max_train_images", "checkpoint_every"))
        SRConfig(self.scale, self.channels, self.blocks)
        if self.patch % self.scale or self.resolution % self.scale:
            raise ValueError(f"patch: patch ({self.patch}) and resolution "
                             f"({self.resolution}) must be multiples of scale ({self.scale})")
        if self.patch > self.resolution:
            raise ValueError(f"patch: must be at most resolution ({self.resolution}), "
                             f"got {self.patch}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: must be a positive number, got {self.lr!r}")
        self.check_run()

    def recipe(self) -> dict[str, Any]:
        """The fields that shape the result (a resumed run must match them)."""
        return {**super().recipe(), "degradations": DEGRADATIONS}


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The Charbonnier loss: mean of sqrt((pred - target)^2 + eps^2), a smooth L1."""
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


@torch.no_grad()
def upscale_float(net: SRNet, lr: torch.Tensor, device: torch.device,
                  batch: int = 32) -> np.ndarray:
    """The network on float inputs (N, 3, h, w) in [0, 1]: uint8 outputs (N, H, W, 3)."""
    was = net.training
    net.eval()
    outs = [to_uint8_images(net(lr[s:s + batch].to(device)))
            for s in range(0, len(lr), batch)]
    net.train(was)
    return np.concatenate(outs)


@dataclass
class _Val:
    """The validation pairs, fixed for the whole run, and the baselines on them."""

    degraded: torch.Tensor
    degraded_target: np.ndarray
    clean: torch.Tensor
    target: np.ndarray
    baselines: dict[str, float]


def _validation(data: Partitions, scale: int, seed: int) -> _Val:
    hr = images_to_float(data.val)
    degraded, degraded_hr = make_pair(hr, scale, np.random.default_rng([seed, 1]))
    clean = (downscale(hr, scale) * 255).round() / 255
    clean_u8 = to_uint8_images(clean)
    lanczos = lanczos_upscale(clean_u8, scale)
    baselines = {"val_lanczos_psnr_clean": float(psnr(lanczos, data.val).mean()),
                 "val_lanczos_ssim_clean": float(ssim(lanczos, data.val).mean()),
                 "val_lanczos_psnr": float(psnr(lanczos_upscale(to_uint8_images(degraded),
                                                                scale),
                                                to_uint8_images(degraded_hr)).mean())}
    return _Val(degraded, to_uint8_images(degraded_hr), clean, data.val, baselines)


def score_upscaler(net: SRNet, val: _Val, device: torch.device,
                   with_ssim: bool = False) -> dict[str, float]:
    """Mean PSNR of the network on the degraded and on the clean validation inputs (and
    the clean SSIM when asked)."""
    out = {"psnr": float(psnr(upscale_float(net, val.degraded, device),
                              val.degraded_target).mean())}
    clean = upscale_float(net, val.clean, device)
    out["psnr_clean"] = float(psnr(clean, val.target).mean())
    if with_ssim:
        out["ssim_clean"] = float(ssim(clean, val.target).mean())
    return out


@dataclass
class _Run:
    cfg: UpscalerTrainConfig
    device: torch.device
    data: Partitions
    val: _Val
    sr_cfg: SRConfig
    net: SRNet
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    recipe: dict[str, Any]
    best: trainloop.Patience
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "steps"
    seconds: float = 0.0

    @property
    def work(self) -> Path:
        return self.cfg.work_dir


def _setup(cfg: UpscalerTrainConfig, log: Callable[[str], None]) -> _Run:
    device = resolve_device(cfg.device)
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    data = load_partitions(cfg.data, cfg.resolution, max_train=cfg.max_train_images,
                           n_val=cfg.val_images, seed=cfg.seed,
                           cache=cfg.work_dir / IMAGES_CACHE, progress=cfg.progress)
    log(f"data: {len(data.train)} training crops (partition 0), {len(data.val)} validation "
        f"crops (partition 1) at {cfg.resolution}px")
    val = _validation(data, cfg.scale, cfg.seed)
    torch.manual_seed(cfg.seed)
    sr_cfg = SRConfig(cfg.scale, cfg.channels, cfg.blocks)
    net = SRNet(sr_cfg).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = trainloop.cosine_schedule(opt, cfg.steps)
    return _Run(cfg=cfg, device=device, data=data, val=val, sr_cfg=sr_cfg, net=net, opt=opt,
                sched=sched, recipe=cfg.recipe(),
                best=trainloop.Patience(cfg.patience, mode="max"))


def _resume(run: _Run, log: Callable[[str], None]) -> None:
    """Continue from the work folder's checkpoint (made with the same recipe).

    Raises:
        ArtifactError: no checkpoint, or one made with another recipe.
    """
    state = trainloop.resume_run(run.work, {"net": run.net}, run.opt, run.sched, run.best,
                                 run.recipe)
    run.step, run.history = int(state["step"]), list(state["history"])
    run.seconds = state.get("seconds", 0.0)
    log(f"resumed at step {run.step} (best validation PSNR {run.best.best:.3f} dB)")


def _checkpoint(run: _Run) -> None:
    trainloop.save_run(run.work, {"net": run.net}, run.opt, run.sched, step=run.step,
                       best=run.best, history=run.history, recipe=run.recipe,
                       extra={"seconds": run.seconds})


def _train_step(run: _Run, rng: np.random.Generator) -> float:
    """One Adam step on ``batch`` degraded patches; returns the Charbonnier loss."""
    cfg = run.cfg
    idx = rng.integers(0, len(run.data.train), cfg.batch)
    cells = (cfg.resolution - cfg.patch) // cfg.scale + 1
    ys = rng.integers(0, cells, cfg.batch) * cfg.scale
    xs = rng.integers(0, cells, cfg.batch) * cfg.scale
    crops = np.stack([run.data.train[i, y:y + cfg.patch, x:x + cfg.patch]
                      for i, y, x in zip(idx, ys, xs, strict=True)])
    flip = rng.random(cfg.batch) < 0.5
    crops[flip] = crops[flip, :, ::-1]
    lr, hr = make_pair(images_to_float(crops), cfg.scale, rng)
    loss = charbonnier(run.net(lr.to(run.device)), hr.to(run.device))
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.sched.step()
    run.step += 1
    return loss.item()


def _evaluate(run: _Run, loss: float, seconds: float, log: trainloop.JsonlLog,
              say: Callable[[str], None]) -> None:
    scores = score_upscaler(run.net, run.val, run.device)
    entry = {"step": run.step, "train_loss": loss,
             **{f"val_{k}": round(v, 4) for k, v in scores.items()},
             "lr": run.sched.get_last_lr()[0], "seconds": round(seconds, 1)}
    note = trainloop.record_evaluation(entry, scores["psnr"], history=run.history, log=log,
                                       best=run.best, snapshot=run.work / BEST, module=run.net)
    say(f"step {run.step}: validation PSNR {scores['psnr']:.3f} dB (Lanczos "
        f"{run.val.baselines['val_lanczos_psnr']:.3f}), clean input {scores['psnr_clean']:.3f}"
        f" dB (Lanczos {run.val.baselines['val_lanczos_psnr_clean']:.3f})  {note}")


def _loop(run: _Run, say: Callable[[str], None]) -> None:
    cfg = run.cfg
    log = trainloop.JsonlLog(run.work / trainloop.LOG_JSONL)
    rng = np.random.default_rng([cfg.seed, run.step])
    torch.manual_seed(cfg.seed * 1_000_003 + run.step)
    start_seconds = run.seconds

    def count(seconds: float) -> None:
        run.seconds = start_seconds + seconds

    def evaluate(losses: Mapping[str, float], seconds: float,
                 tell: Callable[[str], None]) -> bool:
        _evaluate(run, losses["loss"], run.seconds, log, tell)
        return run.best.exhausted

    plan = trainloop.StepPlan(cfg.steps, run.step, cfg.eval_every, cfg.checkpoint_every,
                              cfg.max_minutes, "upscaler", {"loss": ".4f"}, cfg.progress)
    run.stop_reason = trainloop.run_steps(
        plan, lambda: {"loss": _train_step(run, rng)}, evaluate, lambda: _checkpoint(run),
        say, on_step=count)


def _export(run: _Run, log: Callable[[str], None]) -> dict[str, Any]:
    """Write the best snapshot as an ``upscaler-weights`` folder; returns its config."""
    cfg, work, net = run.cfg, run.work, run.net
    if not (work / BEST).is_file():
        raise ArtifactError(f"no evaluated snapshot in {work}: run at least eval_every "
                            f"({cfg.eval_every}) steps")
    net.load_state_dict(trainloop.load_tensors(work / BEST, run.device))
    net.eval()
    final = score_upscaler(net, run.val, run.device, with_ssim=True)
    best_entry = max(run.history, key=lambda e: e["val_psnr"])
    data = run.data
    config = {
        "kind": KIND,
        "format_version": 1,
        "architecture": {"name": ARCHITECTURE, "config": run.sr_cfg.as_dict()},
        "parameters": count_parameters(net),
        "data": {"source": data.source, "source_sha256": data.source_sha256,
                 "train_images": len(data.train), "val_images": len(data.val),
                 "train_partition": TRAIN, "val_partition": VAL,
                 "resolution": cfg.resolution,
                 "inputs": f"crops area-downscaled {cfg.scale}x, then degraded"},
        "degradations": DEGRADATIONS,
        "degradations_imitate": (
            "the default generator's 64 px output (celeba-dcgan64): slightly softer than "
            "box-downscaled crops, more energy at the Nyquist frequency (checkerboard, "
            "grain), less saturated; the colour shift is applied to input and target"),
        "loss": "charbonnier (eps 1e-3)",
        "recipe": run.recipe,
        "training": {"steps_run": run.step, "best_step": best_entry["step"],
                     "stopped_by": run.stop_reason, "seconds": round(run.seconds, 1),
                     "history": run.history},
        "metrics": {**{"val_" + k: round(v, 4) for k, v in final.items()},
                    **{k: round(v, 4) for k, v in run.val.baselines.items()}},
        "created_by": "tlgan sr train",
        "torch": torch.__version__,
    }

    def write_files(tmp: Path) -> None:
        trainloop.save_tensors_atomic(tmp / WEIGHTS_FILE, trainloop.module_tensors(net))
        _write_preview(tmp / "preview.png", net, run.val, run.device)

    written = trainloop.export_artifact(cfg.out, config, write_files)
    write_json_atomic(work / "result.json", written["metrics"])
    m = written["metrics"]
    log(f"wrote {cfg.out}: validation PSNR {m['val_psnr']:.3f} dB (clean input "
        f"{m['val_psnr_clean']:.3f} dB against Lanczos {m['val_lanczos_psnr_clean']:.3f}; best "
        f"step {best_entry['step']}, stopped by {run.stop_reason})")
    return written


def _write_preview(path: Path, net: SRNet, val: _Val, device: torch.device) -> None:
    """Rows of 8 validation crops: Lanczos from the clean 2x-smaller input, the network
    from the same input, the original crop."""
    n = min(8, len(val.target))
    clean = to_uint8_images(val.clean[:n])
    rows = [lanczos_upscale(clean, net.cfg.scale), upscale_float(net, val.clean[:n], device),
            val.target[:n]]
    save_png(path, image_grid(np.concatenate(rows), nrow=n))


def train_upscaler(cfg: UpscalerTrainConfig,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) a training run and export the best upscaler to ``cfg.out``.

    Returns the exported ``config.json``.

    Raises:
        ValueError: a bad setting or data.
        ArtifactError: ``resume`` finds no matching checkpoint.
    """
    cfg.validate()
    run = _setup(cfg, log)
    if cfg.resume:
        _resume(run, log)
    _loop(run, log)
    return _export(run, log)
