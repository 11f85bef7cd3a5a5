"""Training the attribute CNN on a CelebA-format directory (``tlgan extractor train``).

Trains on partition 0, keeps the epoch with the best validation mean ROC-AUC (partition 1) and
stops early when it has not improved for ``patience`` epochs, then evaluates on partition 2
and writes a weights folder (``model.safetensors`` + ``config.json``, kind
``extractor-weights``) atomically.

All images are decoded once into an in-memory uint8 tensor; augmentation (random zoom 1-1.5x
with a small shift, horizontal flip, colour jitter) runs on whole batches of tensors. The
optimizer is AdamW with a one-cycle schedule (warm-up, then cosine decay); an exponential
moving average (EMA) of the weights is what gets evaluated and saved.

With ``max_minutes`` the schedule runs on ``max(step / total steps, elapsed / budget)``, so
on a busy shared CPU it compresses and training ends within the time budget; when the budget
is not reached the run is exactly the step-based (seed-reproducible) one. The config records
whether the budget bound. On CPUs with bf16 support the forward/backward runs
under bf16 autocast (``amp="auto"``); weights stay float32.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from feature_extractor.calibration import calibrate_extractor
from feature_extractor.celeba_images import image_cache
from feature_extractor.celeba_index import CelebaError, CelebaIndex, read_celeba
from feature_extractor.distill import load_teachers, teacher_targets
from feature_extractor.evaluation import compute_metrics, evaluate
from feature_extractor.extractor_weights import KIND, WEIGHTS_FILE
from feature_extractor.model import (
    AttributeNet,
    Extractor,
    ModelConfig,
    Normalization,
    model_memory_format,
    to_memory_format,
)
from feature_extractor.training_config import TTA_CANDIDATES, ExtractorTrainConfig
from feature_extractor.transforms import augment_batch, channel_stats
from tlgan_base.devices import resolve_device
from tlgan_base.trainloop import LoopProgress, Patience, Stopwatch, export_artifact

Log = Callable[[str], None]


def _amp_dtype(amp: str, device: Any) -> Any:
    if amp == "off":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        if amp == "bf16":
            return torch.bfloat16
        try:
            ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            ok = False
        return torch.bfloat16 if ok else None
    return None


def _pos_weight(labels: np.ndarray, mode: str) -> np.ndarray | None:
    if mode == "none":
        return None
    pos = labels.mean(axis=0).clip(1e-3, 1 - 1e-3)
    ratio = (1 - pos) / pos
    w = np.sqrt(ratio) if mode == "sqrt" else ratio
    return np.clip(w, 0.05, 50.0).astype(np.float32)


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[Any] = []
    no_decay: list[Any] = []
    for _name, p in model.named_parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class _Run:
    """One training run: what :func:`_setup` prepares and the loop's state as it goes."""

    cfg: ExtractorTrainConfig
    say: Log
    progress: bool
    device: torch.device
    clock: Stopwatch  # since the start, against the time budget
    gen: torch.Generator
    index: CelebaIndex
    images: np.ndarray  # (N, S, S, 3) uint8, every cached image
    labels: np.ndarray  # (N, A) of the cached rows
    tr: np.ndarray  # positions of the train / val / test partitions among the cached rows
    va: np.ndarray
    te: np.ndarray
    x_all: torch.Tensor
    y_all: torch.Tensor
    norm: Normalization
    mean_t: torch.Tensor
    std_t: torch.Tensor
    soft_all: torch.Tensor | None
    teacher_info: list[dict[str, Any]]
    mcfg: ModelConfig
    model: AttributeNet
    ema_model: AttributeNet | None
    opt: torch.optim.Optimizer
    steps_per_epoch: int
    total_steps: int
    pos_weight: torch.Tensor | None
    amp_dtype: Any
    memory_format: Any  # the model's and its inputs' (torch.memory_format)
    history: list[dict[str, Any]] = field(default_factory=list)
    best: Patience = field(default_factory=Patience)  # validation mean AUC, epochs
    best_state: dict[str, Any] | None = None
    step: int = 0
    lr_now: float = 0.0
    time_led: bool = False  # the time budget, not the step count, set the schedule at some step
    done: bool = False  # set when the time budget ends the run
    stopped_by: str = "epochs"

    def batch_input(self, idx: torch.Tensor, augment: bool) -> torch.Tensor:
        xb = self.x_all[idx].to(self.device, non_blocking=True).permute(0, 3, 1, 2).float() \
            .div_(255.0)
        if augment:
            xb = augment_batch(xb, self.cfg.augment, self.gen)
        xb = (xb - self.mean_t) / self.std_t
        return xb.contiguous(memory_format=self.memory_format)

    def predict_rows(self, net: Any, sel: np.ndarray) -> np.ndarray:
        net.eval()
        outs = []
        with torch.inference_mode():
            for s in range(0, sel.size, 512):
                idx = torch.from_numpy(sel[s:s + 512])
                outs.append(torch.sigmoid(net(self.batch_input(idx, False)).float()).cpu().numpy())
        return np.concatenate(outs)

    def ema_update(self, step: int) -> None:
        if self.ema_model is None:
            return
        decay = min(self.cfg.ema, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            msd = self.model.state_dict()
            for k, v in self.ema_model.state_dict().items():
                if v.dtype.is_floating_point:
                    v.lerp_(msd[k], 1.0 - decay)
                else:
                    v.copy_(msd[k])


def train(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: ExtractorTrainConfig | None = None,
    *,
    progress: bool = True,
    log: Log | None = None,
) -> dict[str, Any]:
    """Train an extractor on a CelebA-format directory and write its weights folder.

    Args:
        data: CelebA-format directory with a partition file (0 train, 1 val, 2 test).
        out: the weights folder to write (replaced atomically).
        cfg: hyper-parameters (defaults: :class:`ExtractorTrainConfig`).
        progress: show tqdm progress bars (on stderr).
        log: where per-epoch summary lines go (default: tqdm.write on stderr).

    Returns:
        The config written to ``out/config.json``.

    Raises:
        CelebaError: bad data (names file and line).
        ValueError: a bad argument or a partition without images.
    """
    cfg = cfg or ExtractorTrainConfig()
    say: Log = log or (lambda m: tqdm.write(m))
    run = _setup(data, cfg, say, progress)
    tr_t = torch.from_numpy(run.tr)
    for epoch in range(1, cfg.epochs + 1):
        t_epoch = time.perf_counter()
        loss_sum, batches = _train_epoch(run, epoch, tr_t)
        if batches == 0:
            break
        if _end_epoch(run, epoch, loss_sum, batches, t_epoch):
            break
    return _export(run, out)


def _setup(data: str | os.PathLike[str], cfg: ExtractorTrainConfig, say: Log,
           progress: bool) -> _Run:
    """Read and decode the data, load the teachers, build the model, optimizer and schedule."""
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    clock = Stopwatch(cfg.max_minutes * 60.0 if cfg.max_minutes else None)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)

    index = read_celeba(data, skip_bad=cfg.skip_bad, report=say)
    if index.partitions is None:
        raise CelebaError(f"{index.root} has no list_eval_partition.txt: training needs "
                          "partition 0 (train) and 1 (validation)")
    teachers = load_teachers(cfg, index.attributes, device)
    images, rows = image_cache(index, cfg.size, cache_dir=cfg.cache_dir, workers=cfg.workers,
                               skip_bad=cfg.skip_bad, report=say, progress=progress)
    part = index.partitions[rows]
    labels = index.labels[rows]
    tr, va, te = (np.flatnonzero(part == p) for p in (0, 1, 2))
    if tr.size < cfg.batch_size:
        raise ValueError(f"partition 0 (train) of {index.root} has {tr.size} images, fewer than "
                         f"one batch ({cfg.batch_size})")
    if va.size == 0:
        raise ValueError(f"partition 1 (validation) of {index.root} has no images")
    say(f"data: {len(rows)} images ({tr.size} train / {va.size} val / {te.size} test), "
        f"{len(index.attributes)} attributes, {cfg.size}px; device {device}")

    x_all = torch.from_numpy(images)  # (N, S, S, 3) uint8
    y_all = torch.from_numpy(labels.astype(np.float32))
    mean, std = channel_stats(images[tr], seed=cfg.seed)
    norm = Normalization(mean=mean, std=std)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1)

    soft_all, teacher_info = teacher_targets(teachers, images, tr, index.attributes, say,
                                              progress)
    del teachers

    mcfg = ModelConfig(num_attributes=len(index.attributes), input_size=cfg.size,
                       widths=tuple(cfg.widths), depths=tuple(cfg.depths), dropout=cfg.dropout)
    model = to_memory_format(AttributeNet(mcfg).to(device), device)
    ema_model = copy.deepcopy(model).eval() if cfg.ema > 0 else None
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr,
                            betas=(0.9, 0.99))
    steps_per_epoch = tr.size // cfg.batch_size
    total_steps = cfg.epochs * steps_per_epoch
    pw = _pos_weight(labels[tr], cfg.pos_weight)
    pos_weight = torch.from_numpy(pw).to(device) if pw is not None else None
    amp_dtype = _amp_dtype(cfg.amp, device)
    return _Run(cfg=cfg, say=say, progress=progress, device=device, clock=clock, gen=gen,
                index=index, images=images, labels=labels, tr=tr, va=va, te=te, x_all=x_all,
                y_all=y_all, norm=norm, mean_t=mean_t, std_t=std_t, soft_all=soft_all,
                teacher_info=teacher_info, mcfg=mcfg, model=model, ema_model=ema_model, opt=opt,
                steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                pos_weight=pos_weight, amp_dtype=amp_dtype,
                memory_format=model_memory_format(mcfg, device), lr_now=_one_cycle(0.0, cfg.lr),
                best=Patience(cfg.patience, mode="max", best=-1.0, best_at=0))


def _train_epoch(run: _Run, epoch: int, tr_t: torch.Tensor) -> tuple[float, int]:
    """One pass over a fresh shuffle of the training rows; returns ``(loss sum, batches)``.

    Stops early, setting ``run.done``, when the time budget's schedule reaches its end.
    """
    cfg, model, opt, device = run.cfg, run.model, run.opt, run.device
    model.train()
    perm = tr_t[torch.randperm(run.tr.size, generator=run.gen)]
    bar = LoopProgress(run.steps_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                       leave=False, enabled=run.progress)
    loss_sum = 0.0
    batches = 0
    for b in range(run.steps_per_epoch):
        progress_frac = run.step / run.total_steps
        by_time = run.clock.fraction()
        if by_time is not None and by_time > progress_frac:
            progress_frac, run.time_led = by_time, True
        if progress_frac >= 1.0 and run.step > 0:
            run.done = True
            break
        run.lr_now = _one_cycle(progress_frac, cfg.lr)
        for group in opt.param_groups:
            group["lr"] = run.lr_now
        idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        xb = run.batch_input(idx, True)
        yb = run.y_all[idx].to(device)
        with torch.autocast(device.type, dtype=run.amp_dtype or torch.float32,
                            enabled=run.amp_dtype is not None):
            logits = model(xb)
        loss = F.binary_cross_entropy_with_logits(logits.float(), yb,
                                                  pos_weight=run.pos_weight)
        if run.soft_all is not None:
            # no positive weighting here: the teachers' probabilities already carry it
            soft = F.binary_cross_entropy_with_logits(logits.float(),
                                                      run.soft_all[idx].to(device))
            loss = (1.0 - cfg.distill) * loss + cfg.distill * soft
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.step += 1
        batches += 1
        run.ema_update(run.step)
        loss_sum += float(loss.detach())
        bar.advance(1, **({} if b % 10 else {"loss": f"{loss_sum / (b + 1):.4f}"}))
    bar.close()
    return loss_sum, batches


def _end_epoch(run: _Run, epoch: int, loss_sum: float, batches: int, t_epoch: float) -> bool:
    """Validate the epoch's (EMA) weights, keep them if they are the best so far, log the
    epoch; returns whether training stops (early stopping, the step count or the budget)."""
    cfg, say, va = run.cfg, run.say, run.va
    net = run.ema_model if run.ema_model is not None else run.model
    val_probs = run.predict_rows(net, va)
    vm = compute_metrics(run.labels[va], val_probs, run.index.attributes)
    val_loss = float(F.binary_cross_entropy(
        torch.from_numpy(val_probs).clamp(1e-6, 1 - 1e-6), run.y_all[torch.from_numpy(va)]))
    rec = {
        "epoch": epoch,
        "train_loss": round(loss_sum / batches, 5),
        "steps": batches,
        "val_loss": round(val_loss, 5),
        "val_mean_auc": vm["mean_auc"],
        "val_mean_accuracy": vm["mean_accuracy"],
        "val_mean_balanced_accuracy": vm["mean_balanced_accuracy"],
        "lr": run.lr_now,
        "seconds": round(time.perf_counter() - t_epoch, 1),
    }
    run.history.append(rec)
    auc = vm["mean_auc"] if vm["mean_auc"] is not None else -val_loss
    improved = run.best.update(auc, epoch)
    if improved:
        run.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    say(f"epoch {epoch}: train loss {rec['train_loss']:.4f}, val loss {val_loss:.4f}, "
        f"val mean AUC {_fmt(vm['mean_auc'])}, acc {_fmt(vm['mean_accuracy'])}, "
        f"bal acc {_fmt(vm['mean_balanced_accuracy'])} ({rec['seconds']}s)"
        + (" *" if improved else ""))
    if run.best.exhausted:
        say(f"early stop: no better validation AUC since epoch {run.best.best_at}")
        run.stopped_by = "early stopping"
        return True
    if run.done or run.step >= run.total_steps:
        if run.done:
            run.stopped_by = "time budget"
            say(f"time budget of {cfg.max_minutes} min reached after {run.step} of "
                f"{run.total_steps} steps (the schedule was compressed to fit)")
        return True
    return False


def _choose_views(run: _Run, extractor: Extractor, val_images: np.ndarray) -> tuple[
        tuple[bool, tuple[float, ...]], list[dict[str, Any]]]:
    """Set the extractor's test-time views to the best of ``cfg.tta``'s candidates on the
    validation images; returns ``(chosen (flip, zooms), trials)``."""
    labels, va = run.labels, run.va
    tta_trials = []
    candidates = {"none": TTA_CANDIDATES[:1], "flip": TTA_CANDIDATES[1:2],
                  "auto": TTA_CANDIDATES}[run.cfg.tta]
    chosen: tuple[bool, tuple[float, ...]] = candidates[0]
    chosen_auc = -1.0
    for flip, zooms in candidates:
        extractor.flip_tta, extractor.tta_zooms = flip, zooms
        auc = compute_metrics(labels[va], extractor.predict(val_images),
                              run.index.attributes)["mean_auc"] or 0.0
        tta_trials.append({"flip": flip, "zooms": list(zooms), "val_mean_auc": auc})
        if auc >= chosen_auc + 0.0005:
            chosen, chosen_auc = (flip, zooms), auc
    extractor.flip_tta, extractor.tta_zooms = chosen
    if len(candidates) > 1:
        run.say(f"test-time views: flip={chosen[0]}, zooms={list(chosen[1])} (validation mean "
                "AUC " + ", ".join(f"{t['val_mean_auc']:.4f}" for t in tta_trials) + ")")
    return chosen, tta_trials


def _export(run: _Run, out: str | os.PathLike[str]) -> dict[str, Any]:
    """The best weights as an extractor: test-time views, calibration and test metrics,
    written atomically as a weights folder; returns its config."""
    cfg, say, index, device, mcfg = run.cfg, run.say, run.index, run.device, run.mcfg
    labels, images, tr, va, te = run.labels, run.images, run.tr, run.va, run.te
    assert run.best_state is not None
    final = AttributeNet(mcfg)
    final.load_state_dict({k: v.cpu() for k, v in run.best_state.items()})
    extractor = Extractor(final, index.attributes, run.norm, name=Path(out).name, sha256="",
                          device=device)
    val_images = images[va]
    chosen, tta_trials = _choose_views(run, extractor, val_images)
    calibration = None
    if cfg.calibrate:
        calibration = calibrate_extractor(
            extractor, extractor.predict(val_images), labels[va], range(len(index.attributes)),
            test_probs=(lambda: extractor.predict(images[te])) if te.size else None,
            test_labels=labels[te], log=say)
    test_metrics = None
    if te.size:
        test_metrics = evaluate(extractor, index, partition="test", workers=cfg.workers,
                                skip_bad=cfg.skip_bad, report=say)
    wall = run.clock.elapsed()
    amp_dtype = run.amp_dtype
    config: dict[str, Any] = {
        "kind": KIND,
        "format_version": 1,
        "attributes": list(index.attributes),
        "input_size": cfg.size,
        "architecture": mcfg.arch,
        "model": mcfg.as_dict(),
        "normalization": run.norm.as_dict(),
        "inference": {"flip_tta": chosen[0], "zooms": list(chosen[1]), "threshold": 0.5,
                      "selected_on": "validation partition", "trials": tta_trials},
        "calibration": calibration,
        "data": {
            "dir_name": index.root.name,
            **index.checksum,
            "train_images": int(tr.size),
            "val_images": int(va.size),
            "test_images": int(te.size),
            "skipped_rows": len(index.skipped),
        },
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "epochs_run": len(run.history),
        "best_epoch": run.best.best_at,
        "training": {
            **cfg.as_dict(),
            "device": device.type,
            "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                            else platform.processor() or platform.machine()),
            "amp": str(amp_dtype).replace("torch.", "") if amp_dtype is not None else "off",
            "threads": torch.get_num_threads(),
            "wall_seconds": round(wall, 1),
            "steps_run": run.step,
            "steps_planned": run.total_steps,
            "stopped_by": run.stopped_by,
            "schedule_time_led": run.time_led,
            "teachers": run.teacher_info,
            "torch": torch.__version__,
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
        "val_metrics": run.history,
        "test_metrics": test_metrics,
        "source": "trained with `tlgan extractor train` on the CelebA-format directory "
                  f"{index.root.name!r}; CelebA is non-commercial research only",
    }
    state = {k: v.detach().cpu().contiguous() for k, v in extractor.model.state_dict().items()}
    written = export_artifact(out, config, lambda tmp: save_file(
        state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt", "arch": mcfg.arch}))
    say(f"wrote {out} in {wall:.0f}s" + (
        f"; test mean AUC {_fmt(test_metrics['mean_auc'])}" if test_metrics else ""))
    return written


def _one_cycle(frac: float, lr: float, warmup: float = 0.2, start_div: float = 20.0,
               end_div: float = 4000.0) -> float:
    """Learning rate at fraction ``frac`` of training: cosine warm-up from lr/start_div to
    lr over the first ``warmup`` fraction, then cosine decay to lr/end_div."""
    frac = min(max(frac, 0.0), 1.0)
    lo, end = lr / start_div, lr / end_div
    if frac < warmup:
        t = frac / warmup
        return lo + (lr - lo) * (1 - math.cos(math.pi * t)) / 2
    t = (frac - warmup) / (1 - warmup)
    return end + (lr - end) * (1 + math.cos(math.pi * t)) / 2


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"
