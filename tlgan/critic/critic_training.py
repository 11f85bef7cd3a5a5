"""``tlgan critic train``: train a realism critic against a frozen generator.

Recipe (defaults; each is recorded in the weights folder's ``config.json``):

- Each step takes ``batch`` real CelebA crops of partition 0 and ``batch`` faces of the
  frozen generator from fresh prior latents (sampled on the fly, never repeated).
- Both halves get random horizontal flips and the same differentiable augmentation policy
  (``augment``: translation, colour, cutout; :mod:`tlgan.training.augment`), so the critic
  learns what the generator gets wrong rather than memorising the training crops.
- With ``broken`` > 0, that share of the generated half is replaced by other partition-0
  crops broken on purpose (:mod:`tlgan.critic.breakage`: warped or melted), also labelled
  unrealistic, so that the critic learns the geometry of a broken face and not only the
  generator's texture; the validation fakes then include as many broken partition-1 crops.
- Loss: binary cross-entropy of the critic's logit (real = 1, generated or broken = 0).
- Adam (lr ``lr``, betas 0.5/0.999), cosine decay to 5% over ``steps``.
- Every ``eval_every`` steps the critic is scored, without augmentation, on ``val_images``
  crops of partition 1 against as many generated faces of fixed seeds
  (``VAL_SEED_BASE`` + i: far from the seeds people look at): the validation loss (the same
  cross-entropy), ROC-AUC and accuracy. The snapshot with the lowest validation loss is kept;
  training stops after ``patience`` evaluations without improvement (or at ``steps``, or
  after ``max_minutes``).

Work folder (``<out>.work`` unless given): ``checkpoint.safetensors`` + ``state.json``,
``best.safetensors``, ``log.jsonl``, the decoded crops cache ``images.npz``. ``resume=True``
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
import torch.nn.functional as F

from tlgan.critic import DEFAULT_AUGMENT
from tlgan.critic.breakage import break_faces
from tlgan.critic.critic_net import ARCHITECTURE, KIND, WEIGHTS_FILE, CriticConfig, CriticNet
from tlgan.encoders.encoder_net import count_parameters
from tlgan.generators import FaceGenerator, load_generator
from tlgan.latents import from_prior
from tlgan.training.augment import augment, parse_policy
from tlgan.training.data import Partitions, load_partitions
from tlgan.training.export import image_grid, save_png
from tlgan.training.run_config import BEST, IMAGES_CACHE, PartitionRunConfig, images_to_float
from tlgan_base import trainloop
from tlgan_base.artifact import ArtifactError, write_json_atomic
from tlgan_base.celeba_layout import TRAIN, VAL
from tlgan_base.classifier_metrics import roc_auc
from tlgan_base.devices import resolve_device

#: validation fakes are the faces of seeds VAL_SEED_BASE, VAL_SEED_BASE + 1, ...
VAL_SEED_BASE = 1_000_000


@dataclass(kw_only=True)
class CriticTrainConfig(PartitionRunConfig):
    """Everything a run depends on (see the module docstring for the recipe; the
    fields every partition-trained run has are :class:`PartitionRunConfig`'s)."""

    generator: str | None = None
    steps: int = 4000
    batch: int = 32
    lr: float = 2e-4
    width: int = 32
    augment: str = DEFAULT_AUGMENT
    broken: float = 0.0
    eval_every: int = 200
    val_images: int = 1024
    checkpoint_every: int = 200

    def validate(self) -> None:
        self.check_positive(("steps", "batch", "width", "eval_every", "patience",
                             "val_images", "max_train_images", "checkpoint_every"))
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: must be a positive number, got {self.lr!r}")
        if not (math.isfinite(self.broken) and 0.0 <= self.broken < 1.0):
            raise ValueError(f"broken: must be in [0, 1), got {self.broken!r}")
        parse_policy(self.augment)
        CriticConfig(width=self.width)
        self.check_run()


def validation_fakes(gen: FaceGenerator, count: int) -> np.ndarray:
    """The generator's faces (uint8) of the validation seeds ``VAL_SEED_BASE + i``."""
    z = gen.sample_latents(range(VAL_SEED_BASE, VAL_SEED_BASE + count))
    return gen.render(z)


@torch.no_grad()
def score_critic(net: CriticNet, real: np.ndarray, fake: np.ndarray, device: torch.device,
                 batch: int = 256) -> dict[str, float]:
    """The critic on real and generated uint8 faces, unaugmented: mean cross-entropy
    (``loss``), ROC-AUC (real against generated), accuracy at logit 0 and the mean logits."""
    was = net.training
    net.eval()

    def logits(images: np.ndarray) -> np.ndarray:
        return np.concatenate([net(images_to_float(images[s:s + batch], device)).cpu().numpy()
                               for s in range(0, len(images), batch)]).astype(np.float64)

    lr_, lf = logits(real), logits(fake)
    net.train(was)
    # softplus(-l) is -log sigmoid(l): the loss of a real face; softplus(l) of a fake one
    loss = float(np.mean(np.concatenate([np.logaddexp(0, -lr_), np.logaddexp(0, lf)])))
    labels = np.concatenate([np.ones(len(lr_)), np.zeros(len(lf))])
    auc = roc_auc(labels, np.concatenate([lr_, lf]))
    acc = float(np.mean(np.concatenate([lr_ > 0, lf <= 0])))
    return {"loss": loss, "auc": float(auc if auc is not None else math.nan), "accuracy": acc,
            "real_logit": float(lr_.mean()), "fake_logit": float(lf.mean())}


@dataclass
class _Run:
    """One critic training run: what :func:`_setup` builds and the loop's state."""

    cfg: CriticTrainConfig
    device: torch.device
    gen: FaceGenerator
    data: Partitions
    val_fake: np.ndarray
    net_cfg: CriticConfig
    net: CriticNet
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    recipe: dict[str, Any]
    best: trainloop.Patience
    policy: tuple[str, ...]
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "steps"

    @property
    def work(self) -> Path:
        return self.cfg.work_dir


def _setup(cfg: CriticTrainConfig, log: Callable[[str], None]) -> _Run:
    """Load the frozen generator and the data; build the critic, its optimizer and its
    cosine schedule."""
    device = resolve_device(cfg.device)
    gen = load_generator(cfg.generator, device)
    for p in gen.module.parameters():
        p.requires_grad_(False)
    gen.module.eval()
    cfg.work_dir.mkdir(parents=True, exist_ok=True)
    data = load_partitions(cfg.data, gen.resolution, max_train=cfg.max_train_images,
                           n_val=cfg.val_images, seed=cfg.seed, cache=cfg.work_dir / IMAGES_CACHE,
                           progress=cfg.progress)
    val_fake = validation_fakes(gen, len(data.val))
    log(f"data: {len(data.train)} training crops (partition 0), {len(data.val)} validation "
        f"crops (partition 1) against {len(val_fake)} faces of seeds {VAL_SEED_BASE}+"
        + (" and as many broken partition-1 crops" if cfg.broken > 0 else "")
        + f" at {gen.resolution}px")
    if cfg.broken > 0:
        val_fake = np.concatenate([val_fake, broken_faces(data.val, VAL_SEED_BASE, device)])
    torch.manual_seed(cfg.seed)
    net_cfg = CriticConfig(resolution=gen.resolution, width=cfg.width)
    net = CriticNet(net_cfg).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    sched = trainloop.cosine_schedule(opt, cfg.steps)
    recipe = {**cfg.recipe(), "generator_sha256": gen.sha256}
    return _Run(cfg=cfg, device=device, gen=gen, data=data, val_fake=val_fake, net_cfg=net_cfg,
                net=net, opt=opt, sched=sched, recipe=recipe,
                best=trainloop.Patience(cfg.patience, mode="min", best=math.inf),
                policy=parse_policy(cfg.augment))


def _resume(run: _Run, log: Callable[[str], None]) -> None:
    """Continue from the work folder's checkpoint (made with the same recipe).

    Raises:
        ArtifactError: no checkpoint, or one made with another recipe.
    """
    state = trainloop.resume_run(run.work, {"critic": run.net}, run.opt, run.sched, run.best,
                                 run.recipe)
    run.step, run.history = int(state["step"]), list(state["history"])
    log(f"resumed at step {run.step} (best validation loss {run.best.best:.5f})")


def _checkpoint(run: _Run) -> None:
    """Save the critic, its optimizer and schedule and the loop's counters."""
    trainloop.save_run(run.work, {"critic": run.net}, run.opt, run.sched, step=run.step,
                       best=run.best, history=run.history, recipe=run.recipe)


def broken_faces(images: np.ndarray, seed: int, device: torch.device) -> np.ndarray:
    """uint8 faces broken on purpose (:func:`tlgan.critic.breakage.break_faces`), seeded."""
    g = torch.Generator(device=device).manual_seed(seed)
    x = images_to_float(images, device) * 2.0 - 1.0
    with torch.no_grad():
        out = break_faces(x, g)
    return ((out + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1) \
        .cpu().numpy()


def _fresh_fakes(run: _Run, zgen: torch.Generator) -> torch.Tensor:
    """``batch`` faces of fresh prior latents, float (N, 3, R, R) in [0, 1]."""
    gen = run.gen
    eps = torch.randn(run.cfg.batch, gen.latent_size, generator=zgen)
    z = eps.numpy() if gen.latent_space.is_standard else from_prior(eps.numpy(), gen.latent_space)
    return gen.render_tensor(z).clone()  # clone: out of inference mode, usable by autograd


def _train_step(run: _Run, zgen: torch.Generator, agen: torch.Generator,
                rng: np.random.Generator) -> float:
    """One Adam step on ``batch`` real crops and ``batch`` fresh generated faces (flipped
    and augmented alike); returns the training loss."""
    cfg, device = run.cfg, run.device
    fake = _fresh_fakes(run, zgen).to(device)
    real = images_to_float(run.data.train[rng.integers(0, len(run.data.train), cfg.batch)], device)
    nb = round(cfg.batch * cfg.broken)
    if nb:
        other = images_to_float(run.data.train[rng.integers(0, len(run.data.train), nb)], device)
        with torch.no_grad():
            damaged = (break_faces(other * 2.0 - 1.0, agen) + 1.0) / 2.0
        fake = torch.cat([fake[:cfg.batch - nb], damaged])
    x = torch.cat([real, fake]) * 2.0 - 1.0
    flip = torch.from_numpy(rng.random(len(x)) < 0.5).to(device)
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if run.policy:
        x = augment(x, run.policy, agen)
    target = torch.cat([torch.ones(cfg.batch), torch.zeros(cfg.batch)]).to(device)
    loss = F.binary_cross_entropy_with_logits(run.net.forward_signed(x), target)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.sched.step()
    run.step += 1
    return float(loss.item())


def _evaluate(run: _Run, train_loss: float, seconds: float, log: trainloop.JsonlLog,
              say: Callable[[str], None]) -> None:
    """Score the critic on the validation faces, log it, keep it if it is the best."""
    scores = score_critic(run.net, run.data.val, run.val_fake, run.device)
    entry = {"step": run.step, "train_loss": train_loss,
             **{f"val_{k}": v for k, v in scores.items()},
             "lr": run.sched.get_last_lr()[0], "seconds": round(seconds, 1)}
    note = trainloop.record_evaluation(entry, scores["loss"], history=run.history, log=log,
                                       best=run.best, snapshot=run.work / BEST, module=run.net)
    say(f"step {run.step}: validation loss {scores['loss']:.4f}, AUC {scores['auc']:.4f}, "
        f"accuracy {scores['accuracy']:.3f}  {note}")


def _loop(run: _Run, say: Callable[[str], None]) -> None:
    """Train to ``steps`` (or ``max_minutes``, or until patience runs out), evaluating
    every ``eval_every`` steps and checkpointing every ``checkpoint_every``."""
    cfg = run.cfg
    log = trainloop.JsonlLog(run.work / trainloop.LOG_JSONL)
    rng = np.random.default_rng([cfg.seed, run.step])
    zgen = torch.Generator(device="cpu").manual_seed(cfg.seed * 1_000_003 + run.step)
    agen = torch.Generator(device=run.device).manual_seed(cfg.seed * 7_919 + run.step + 1)

    def evaluate(losses: Mapping[str, float], seconds: float,
                 tell: Callable[[str], None]) -> bool:
        _evaluate(run, losses["loss"], seconds, log, tell)
        return run.best.exhausted

    plan = trainloop.StepPlan(cfg.steps, run.step, cfg.eval_every, cfg.checkpoint_every,
                              cfg.max_minutes, "critic", {"loss": ".3f"}, cfg.progress)
    run.stop_reason = trainloop.run_steps(
        plan, lambda: {"loss": _train_step(run, zgen, agen, rng)}, evaluate,
        lambda: _checkpoint(run), say)


def _export(run: _Run, log: Callable[[str], None]) -> dict[str, Any]:
    """Write the best snapshot as a ``critic-weights`` folder; returns its config."""
    cfg, work, net, device = run.cfg, run.work, run.net, run.device
    if not (work / BEST).is_file():
        raise ArtifactError(f"no evaluated snapshot in {work}: run at least eval_every "
                            f"({cfg.eval_every}) steps")
    net.load_state_dict(trainloop.load_tensors(work / BEST, device))
    net.eval()
    final = score_critic(net, run.data.val, run.val_fake, device)
    best_entry = min(run.history, key=lambda e: e["val_loss"])
    data = run.data
    config = {
        "kind": KIND,
        "format_version": 1,
        "architecture": {"name": ARCHITECTURE, "config": run.net_cfg.as_dict()},
        "parameters": count_parameters(net),
        "generator": {"name": run.gen.name, "sha256": run.gen.sha256},
        "data": {"source": data.source, "source_sha256": data.source_sha256,
                 "train_images": len(data.train), "val_images": len(data.val),
                 "train_partition": TRAIN, "val_partition": VAL,
                 "fakes": "fresh prior latents each step (truncation 1)",
                 "val_fakes": f"seeds {VAL_SEED_BASE}..{VAL_SEED_BASE + len(data.val) - 1}"
                              + (" + as many broken partition-1 crops" if cfg.broken else "")},
        "recipe": run.recipe,
        "selection": "the snapshot with the lowest validation loss",
        "training": {"steps_run": run.step, "best_step": best_entry["step"],
                     "stopped_by": run.stop_reason, "history": run.history},
        "metrics": {"val_" + k: round(v, 5) for k, v in final.items()},
        "created_by": "tlgan critic train",
        "torch": torch.__version__,
    }

    def write_files(tmp: Path) -> None:
        trainloop.save_tensors_atomic(tmp / WEIGHTS_FILE, trainloop.module_tensors(net))
        _write_preview(tmp / "ranked.png", net, run.val_fake[:256], device)

    written = trainloop.export_artifact(cfg.out, config, write_files)
    write_json_atomic(work / "result.json", written["metrics"])
    log(f"wrote {cfg.out}: validation loss {final['loss']:.4f}, AUC {final['auc']:.4f}, "
        f"accuracy {final['accuracy']:.3f} (best step {best_entry['step']}, stopped by "
        f"{run.stop_reason})")
    return written


def train_critic(cfg: CriticTrainConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) a training run and export the best critic to ``cfg.out``.

    Returns the exported ``config.json``.

    Raises:
        ValueError: a bad setting or data.
        ArtifactError: the generator does not load, or ``resume`` finds no matching
            checkpoint.
    """
    cfg.validate()
    run = _setup(cfg, log)
    if cfg.resume:
        _resume(run, log)
    _loop(run, log)
    return _export(run, log)


@torch.no_grad()
def _write_preview(path: Path, net: CriticNet, faces: np.ndarray, device: torch.device) -> None:
    """The 16 lowest-scored validation fakes (top two rows) above the 16 highest-scored."""
    scores = net(images_to_float(faces, device)).cpu().numpy()
    order = np.argsort(scores, kind="stable")
    k = min(16, len(faces) // 2)
    picked = np.concatenate([faces[order[:k]], faces[order[len(order) - k:]]])
    save_png(path, image_grid(picked, nrow=8))


__all__ = ["CriticTrainConfig", "score_critic", "train_critic", "validation_fakes"]
