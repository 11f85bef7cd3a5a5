"""``tlgan encoder train``: train an image -> z encoder for a generator.

Recipe (defaults; each is recorded in the weights folder's ``config.json``):

- Each step takes ``batch`` generated pairs (z ~ the generator's prior, x = G(z), sampled on
  the fly) and ``batch`` real CelebA crops of partition 0 (random horizontal flips).
- On the pairs: the latent loss, the mean squared error between E(G(z)) and z.
- On the real crops: the inversion loss of :mod:`tlgan.encoders.losses` at E(x) (pixel MSE
  + the extractor-embedding perceptual term + the Gaussian-shell penalty), weighted by
  ``real_weight``.
- Adam (lr ``lr``, cosine decay to 5% over ``steps``), generator and extractor frozen (eval).
- Every ``eval_every`` steps the encoder alone is scored on ``val_images`` crops of
  partition 1 (their inversion loss); the best snapshot is kept, and training stops early
  after ``patience`` evaluations without improvement (or at ``steps``, or after
  ``max_minutes``).

Work folder (``<out>.work`` unless given): ``checkpoint.safetensors`` + ``state.json``
every ``checkpoint_every`` steps and at the end, ``best.safetensors``, ``log.jsonl``, the
decoded images cache ``images.npz``. ``resume=True`` continues from the checkpoint (the same
recipe is required, but ``steps`` may change: it is the target; data order continues from a
seed derived from the step, so a resumed run is not bit-for-bit the uninterrupted one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from feature_extractor.extractor_weights import load_extractor
from feature_extractor.model import Extractor
from tlgan.encoders.encoder_net import (
    ARCHITECTURE,
    KIND,
    WEIGHTS_FILE,
    EncoderConfig,
    ImageEncoder,
    count_parameters,
)
from tlgan.encoders.losses import InversionLoss, LossWeights, psnr
from tlgan.generators import FaceGenerator, load_generator
from tlgan.latents import from_prior
from tlgan.training.data import Partitions, load_partitions
from tlgan.training.export import image_grid, save_png
from tlgan.training.run_config import BEST, IMAGES_CACHE, PartitionRunConfig, images_to_float
from tlgan_base import trainloop
from tlgan_base.artifact import ArtifactError, write_json_atomic
from tlgan_base.celeba_layout import TRAIN, VAL
from tlgan_base.devices import resolve_device


@dataclass(kw_only=True)
class EncoderTrainConfig(PartitionRunConfig):
    """Everything a run depends on (see the module docstring for the recipe; the
    fields every partition-trained run has are :class:`PartitionRunConfig`'s)."""

    generator: str | None = None
    extractor: str | None = None
    steps: int = 6000
    batch: int = 32
    lr: float = 1e-3
    real_weight: float = 10.0
    perceptual_weight: float = LossWeights.perceptual
    shell_weight: float = LossWeights.shell
    widths: tuple[int, ...] = (32, 64, 128, 256)

    def validate(self) -> None:
        self.check_positive(("steps", "batch", "eval_every", "patience", "val_images",
                             "max_train_images", "checkpoint_every"))
        for name in ("lr", "real_weight"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be a positive number, got {v!r}")
        LossWeights(self.perceptual_weight, self.shell_weight)
        self.check_run()

    def recipe(self) -> dict[str, Any]:
        """The fields that shape the result (a resumed run must match them)."""
        return {**super().recipe(), "widths": list(self.widths)}


@torch.no_grad()
def score_encoder(encoder: ImageEncoder, loss: InversionLoss, images: np.ndarray,
                  device: torch.device, batch: int = 128) -> dict[str, float]:
    """The encoder alone on photos: mean inversion loss (``loss``), PSNR, embedding cosine
    and extractor-label agreement between photo and reconstruction."""
    was = encoder.training
    encoder.eval()
    totals: dict[str, list[float]] = {"loss": [], "psnr": [], "cosine": [], "agreement": []}
    for s in range(0, len(images), batch):
        x = images_to_float(images[s:s + batch], device)
        probs, emb = loss.extractor.forward_tensor(x) if loss.extractor else (None, None)
        z = encoder(x)
        t = loss.terms(z, x, emb)
        rec = t["image"].clamp(0, 1)
        mse = ((rec - x) ** 2).flatten(1).mean(1)
        totals["loss"] += t["total"].tolist()
        totals["psnr"] += psnr(mse).tolist()  # type: ignore[union-attr]
        if loss.extractor is not None and probs is not None and emb is not None:
            rp, re = loss.extractor.forward_tensor(rec)
            totals["cosine"] += torch.nn.functional.cosine_similarity(re, emb).tolist()
            totals["agreement"] += ((rp > 0.5) == (probs > 0.5)).float().mean(1).tolist()
    encoder.train(was)
    return {k: float(np.mean(v)) for k, v in totals.items() if v}


@dataclass
class _Run:
    """One encoder training run: what :func:`_setup` builds and the loop's state."""

    cfg: EncoderTrainConfig
    device: torch.device
    gen: FaceGenerator
    ext: Extractor
    weights: LossWeights
    loss: InversionLoss
    data: Partitions
    enc_cfg: EncoderConfig
    encoder: ImageEncoder
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    recipe: dict[str, Any]
    best: trainloop.Patience
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "steps"

    @property
    def work(self) -> Path:
        return self.cfg.work_dir


def _setup(cfg: EncoderTrainConfig, log: Callable[[str], None]) -> _Run:
    """Load the frozen generator and extractor and the data; build the encoder, its
    optimizer and its cosine schedule."""
    device = resolve_device(cfg.device)
    gen = load_generator(cfg.generator, device)
    ext = load_extractor(cfg.extractor, device)
    for p in (*gen.module.parameters(), *ext.model.parameters()):
        p.requires_grad_(False)
    gen.module.eval()
    ext.model.eval()
    weights = LossWeights(cfg.perceptual_weight, cfg.shell_weight)
    loss = InversionLoss(gen.module, ext, weights, gen.value_range, gen.spatial_latent)
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    data = load_partitions(cfg.data, gen.resolution, max_train=cfg.max_train_images,
                           n_val=cfg.val_images, seed=cfg.seed, cache=cfg.work_dir / IMAGES_CACHE,
                           progress=cfg.progress)
    log(f"data: {len(data.train)} training crops (partition 0), {len(data.val)} validation "
        f"crops (partition 1) at {gen.resolution}px")

    torch.manual_seed(cfg.seed)
    enc_cfg = EncoderConfig(gen.latent_size, gen.resolution, tuple(cfg.widths))
    encoder = ImageEncoder(enc_cfg).to(device).train()
    opt = torch.optim.Adam(encoder.parameters(), lr=cfg.lr)
    sched = trainloop.cosine_schedule(opt, cfg.steps)
    recipe = {**cfg.recipe(), "generator_sha256": gen.sha256, "extractor_sha256": ext.sha256}
    return _Run(cfg=cfg, device=device, gen=gen, ext=ext, weights=weights, loss=loss, data=data,
                enc_cfg=enc_cfg, encoder=encoder, opt=opt, sched=sched, recipe=recipe,
                best=trainloop.Patience(cfg.patience, mode="min", best=math.inf))


def _resume(run: _Run, log: Callable[[str], None]) -> None:
    """Continue from the work folder's checkpoint (made with the same recipe).

    Raises:
        ArtifactError: no checkpoint, or one made with another recipe.
    """
    state = trainloop.resume_run(run.work, {"encoder": run.encoder}, run.opt, run.sched,
                                 run.best, run.recipe)
    run.step, run.history = int(state["step"]), list(state["history"])
    log(f"resumed at step {run.step} (best validation loss {run.best.best:.5f})")


def _checkpoint(run: _Run) -> None:
    """Save the encoder, its optimizer and schedule and the loop's counters."""
    trainloop.save_run(run.work, {"encoder": run.encoder}, run.opt, run.sched, step=run.step,
                       best=run.best, history=run.history, recipe=run.recipe)


def _train_step(run: _Run, zgen: torch.Generator, rng: np.random.Generator
                ) -> tuple[float, float]:
    """One Adam step on ``batch`` generated pairs and ``batch`` real crops; returns the
    latent loss and the real crops' inversion loss."""
    cfg, device, prior = run.cfg, run.device, run.gen.latent_space
    eps = torch.randn(cfg.batch, run.gen.latent_size, generator=zgen)
    z = eps.numpy() if prior.is_standard else from_prior(eps.numpy(), prior)
    zt = torch.as_tensor(z, dtype=torch.float32, device=device)
    with torch.no_grad():
        fake = run.loss.render(zt).clamp(0, 1)
    idx = rng.integers(0, len(run.data.train), cfg.batch)
    real = images_to_float(run.data.train[idx], device)
    flip = torch.from_numpy(rng.random(cfg.batch) < 0.5).to(device)
    real = torch.where(flip[:, None, None, None], real.flip(3), real)
    with torch.no_grad():
        _, real_emb = run.ext.forward_tensor(real)
    z_all = run.encoder(torch.cat([fake, real]))
    latent = ((z_all[:cfg.batch] - zt) ** 2).mean()
    terms = run.loss.terms(z_all[cfg.batch:], real, real_emb)
    total = latent + cfg.real_weight * terms["total"].mean()
    run.opt.zero_grad(set_to_none=True)
    total.backward()
    run.opt.step()
    run.sched.step()
    run.step += 1
    return latent.item(), terms["total"].mean().item()


def _evaluate(run: _Run, latent: float, real: float, seconds: float, log: trainloop.JsonlLog,
              say: Callable[[str], None]) -> None:
    """Score the encoder on the validation crops, log it, keep it if it is the best."""
    scores = score_encoder(run.encoder, run.loss, run.data.val, run.device)
    entry = {"step": run.step, "latent_mse": latent, "train_real": real,
             **{f"val_{k}": v for k, v in scores.items()},
             "lr": run.sched.get_last_lr()[0], "seconds": round(seconds, 1)}
    note = trainloop.record_evaluation(entry, scores["loss"], history=run.history, log=log,
                                       best=run.best, snapshot=run.work / BEST,
                                       module=run.encoder)
    say(f"step {run.step}: validation loss {scores['loss']:.5f}, PSNR "
        f"{scores['psnr']:.2f} dB, cosine {scores.get('cosine', 0):.3f}, label "
        f"agreement {scores.get('agreement', 0):.3f}  {note}")


def _loop(run: _Run, say: Callable[[str], None]) -> None:
    """Train to ``steps`` (or ``max_minutes``, or until patience runs out), evaluating
    every ``eval_every`` steps and checkpointing every ``checkpoint_every`` (and at the end,
    unless the time ran out)."""
    cfg = run.cfg
    log = trainloop.JsonlLog(run.work / trainloop.LOG_JSONL)
    rng = np.random.default_rng([cfg.seed, run.step])
    zgen = torch.Generator(device="cpu").manual_seed(cfg.seed * 1_000_003 + run.step)

    def step() -> dict[str, float]:
        latent, real = _train_step(run, zgen, rng)
        return {"latent": latent, "real": real}

    def evaluate(losses: Mapping[str, float], seconds: float,
                 tell: Callable[[str], None]) -> bool:
        _evaluate(run, losses["latent"], losses["real"], seconds, log, tell)
        return run.best.exhausted

    plan = trainloop.StepPlan(cfg.steps, run.step, cfg.eval_every, cfg.checkpoint_every,
                              cfg.max_minutes, "encoder", {"latent": ".3f", "real": ".4f"},
                              cfg.progress)
    run.stop_reason = trainloop.run_steps(plan, step, evaluate, lambda: _checkpoint(run), say,
                                          checkpoint_on_timeout=False)


def _export(run: _Run, log: Callable[[str], None]) -> dict[str, Any]:
    """Write the best snapshot as an ``encoder-weights`` folder; returns its config."""
    cfg, work, encoder, device = run.cfg, run.work, run.encoder, run.device
    if not (work / BEST).is_file():
        raise ArtifactError(f"no evaluated snapshot in {work}: run at least eval_every "
                            f"({cfg.eval_every}) steps")
    encoder.load_state_dict(trainloop.load_tensors(work / BEST, device))
    encoder.eval()
    final = score_encoder(encoder, run.loss, run.data.val, device)
    best_entry = min(run.history, key=lambda e: e["val_loss"])
    data = run.data
    config = {
        "kind": KIND,
        "format_version": 1,
        "architecture": {"name": ARCHITECTURE, "config": run.enc_cfg.as_dict()},
        "parameters": count_parameters(encoder),
        "generator": {"name": run.gen.name, "sha256": run.gen.sha256,
                      "latent_space": run.gen.latent_space.name},
        "extractor": {"name": run.ext.name, "sha256": run.ext.sha256},
        "loss_weights": run.weights.as_dict(),
        "data": {"source": data.source, "source_sha256": data.source_sha256,
                 "train_images": len(data.train), "val_images": len(data.val),
                 "train_partition": TRAIN, "val_partition": VAL},
        "recipe": run.recipe,
        "training": {"steps_run": run.step, "best_step": best_entry["step"],
                     "stopped_by": run.stop_reason, "history": run.history},
        "metrics": {"val_" + k: round(v, 5) for k, v in final.items()},
        "created_by": "tlgan encoder train",
        "torch": torch.__version__,
    }

    def write_files(tmp: Path) -> None:
        trainloop.save_tensors_atomic(tmp / WEIGHTS_FILE, trainloop.module_tensors(encoder))
        _write_preview(tmp / "reconstructions.png", encoder, run.loss, data.val[:16], device)

    written = trainloop.export_artifact(cfg.out, config, write_files)
    write_json_atomic(work / "result.json", written["metrics"])
    log(f"wrote {cfg.out}: validation PSNR {final['psnr']:.2f} dB, cosine "
        f"{final.get('cosine', 0):.3f}, label agreement {final.get('agreement', 0):.3f} "
        f"(best step {best_entry['step']}, stopped by {run.stop_reason})")
    return written


def train_encoder(cfg: EncoderTrainConfig,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) a training run and export the best encoder to ``cfg.out``.

    Returns the exported ``config.json``.

    Raises:
        ValueError: a bad setting or data.
        ArtifactError: a model does not load, or ``resume`` finds no matching checkpoint.
    """
    cfg.validate()
    run = _setup(cfg, log)
    if cfg.resume:
        _resume(run, log)
    _loop(run, log)
    return _export(run, log)


@torch.no_grad()
def _write_preview(path: Path, encoder: ImageEncoder, loss: InversionLoss, photos: np.ndarray,
                   device: torch.device) -> None:
    """Photos (top of each pair of rows) above their encoder-only reconstructions."""
    x = images_to_float(photos, device)
    rec = (loss.render(encoder(x)).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1)
    rows = []
    for s in range(0, len(photos), 8):
        rows += [photos[s:s + 8], rec[s:s + 8].cpu().numpy()]
    save_png(path, image_grid(np.concatenate(rows), nrow=8))
