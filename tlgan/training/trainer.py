"""``tlgan generator train``: train the registry's DCGAN generator shape on face images.

Recipe (defaults; each is recorded in the weights folder's ``config.json``):

- G: :class:`~tlgan.generators.dcgan.DCGANGenerator` (z in R^100 -> 64x64, BatchNorm, tanh),
  exactly the shape the registry loads, DCGAN init.
- D: the DCGAN discriminator with spectral normalisation on every conv instead of BatchNorm
  (``d_norm="batch"`` gives the tutorial's D; ``d_arch="sngan"`` a deeper SNGAN-style D).
- Loss: hinge (or non-saturating, ``loss="ns"``); one D step per G step.
- Adam, lr 2e-4 for both, betas (0.5, 0.999).
- Real images: random horizontal flips; real and fake images pass the same differentiable
  augmentation before D (DiffAugment-style, default ``translation``).
- An EMA of G's weights (decay 0.999 with warm-up) is what gets sampled, scored and exported;
  before use its BatchNorm statistics are re-estimated for its own weights.
- Quality: Fréchet distance between extractor embeddings of ``fd_samples`` generated faces and
  of the test-partition faces, with the real-vs-real floor (``fd_samples`` training faces vs
  the test faces) beside it; reported every ``eval_every`` iterations for the EMA and for the
  raw generator (which measures the EMA's gain); the best snapshot of either is exported.

The DCGAN tutorial's recipe (the trial generator's) is ``loss="ns", d_norm="batch",
ema_decay=0, augment="none", flip=False``: train it beside the default to measure the recipe.

Work folder (``<out>.work`` unless given): ``checkpoint.safetensors`` + ``state.json`` every
``checkpoint_every`` iterations and on Ctrl-C, ``best.safetensors`` (best snapshot so far),
``samples/iter_NNNNNN.png`` grids of fixed latents every ``sample_every`` iterations and
``log.jsonl``. ``resume=True`` continues from the checkpoint, bit-for-bit on CPU.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tlgan.training.augment import augment, parse_policy
from tlgan.training.config import GeneratorTrainConfig, _stream_seed
from tlgan.training.data import ImageSet, load_image_set
from tlgan.training.export import TrainResult, export, image_grid, save_png, tanh_images_to_uint8
from tlgan.training.frechet import (
    EmbeddingExtractor,
    Reference,
    embed_generated,
    load_metric_extractor,
)
from tlgan.training.networks import (
    EMA,
    LATENT_SIZE,
    Discriminator,
    build_generator,
    dcgan_init,
    recalibrate_bn,
)
from tlgan_base import trainloop
from tlgan_base.devices import memory_format, resolve_device

BEST = "best.safetensors"
GRID = 64
STREAMS = ("data", "z", "aug")  # the random streams a checkpoint carries


def d_loss_fn(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on its real and fake outputs (hinge or non-saturating)."""
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_fn(loss: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on the discriminator's outputs for its fakes."""
    if loss == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


def _stream(cfg: GeneratorTrainConfig, name: str, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(_stream_seed(cfg.seed, name))
    return g


def _mismatch(saved: dict[str, Any], compat: dict[str, Any]) -> str | None:
    """What differs between a checkpoint's state and this run (None: it matches)."""
    for key in ("recipe", "data_pixels_sha256", "metric"):
        if saved.get(key) != compat[key]:
            if key == "recipe" and isinstance(saved.get(key), dict):
                diff = [k for k in compat[key] if saved[key].get(k) != compat[key][k]]
                return f"recipe field(s) {', '.join(diff)} differ"
            if key == "metric":
                return "the metric's extractor or --fd-samples differ"
            return "the training images differ"
    return None


class Trainer:
    """One training run: models, optimizers, random streams, metric reference, work folder."""

    def __init__(self, cfg: GeneratorTrainConfig, images: ImageSet, device: torch.device,
                 extractor: EmbeddingExtractor | None, log: Callable[[str], None]) -> None:
        self.cfg, self.images, self.device, self.log = cfg, images, device, log
        self.work = cfg.work_dir()
        self.policy = parse_policy(cfg.augment)
        self.cuda = device.type == "cuda"
        if cfg.amp and not self.cuda:
            raise ValueError("amp: bf16 autocast is only used on CUDA devices; drop --amp")
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        torch.manual_seed(cfg.seed)
        self.G = build_generator(cfg.ngf)
        self.D = Discriminator(cfg.ndf, arch=cfg.d_arch, norm=cfg.d_norm)
        # channels_last on CUDA only: not measured for these models on the CPU, where tiny
        # widths hit a oneDNN bug (tlgan_base.devices.memory_format)
        for module in (self.G, self.D):
            dcgan_init(module)
            module.to(device).to(memory_format=memory_format(device))  # type: ignore[call-overload]
        self.ema = EMA(self.G, cfg.ema_decay)
        betas = (cfg.beta1, cfg.beta2)
        fused = True if self.cuda else None  # one kernel per step on CUDA
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas, fused=fused)
        self.streams = {name: _stream(cfg, name, device) for name in STREAMS}
        cpu = torch.device("cpu")
        self.z_fixed = torch.randn(GRID, LATENT_SIZE, generator=_stream(cfg, "fixed", cpu)
                                   ).to(device)
        self.train_u8 = torch.from_numpy(images.train).to(device)
        self.pixels_sha256 = images.pixels_sha256()
        self.iteration = 0
        self.wall_time_s = 0.0
        self.train_time_s = 0.0
        self.history: list[dict[str, Any]] = []
        self.best = trainloop.Patience(mode="min")  # best FD so far (no early stopping)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_eval = -1
        self.best_weights = "ema"
        self.stopped_early = False

        self.extractor = extractor
        self.reference: Reference | None = None
        self.z_eval: torch.Tensor | None = None
        if extractor is not None:
            self.log(f"metric: embedding {min(cfg.fd_samples, len(images.train))} training and "
                     f"{0 if images.test is None else len(images.test)} test faces with "
                     f"{getattr(extractor, 'name', 'extractor')}")
            self.reference = Reference(extractor, images.train, images.test, cfg.fd_samples,
                                       device, seed=_stream_seed(cfg.seed, "subset"))
            self.z_eval = torch.randn(cfg.fd_samples, LATENT_SIZE,
                                      generator=_stream(cfg, "eval", cpu)).to(device)
            floor = self.reference.floor
            self.log("metric: real-vs-real floor (train vs test) "
                     + ("n/a (no test partition)" if floor is None else f"{floor:.2f}")
                     + f", n={cfg.fd_samples}")

    # ------------------------------------------------------------------------- snapshots
    def snapshot(self, weights: str = "ema") -> nn.Module:
        """A copy of the EMA (or the raw, trained) generator in eval mode, with BatchNorm
        statistics re-estimated for its own weights."""
        snap = copy.deepcopy(self.ema.module if weights == "ema" else self.G)
        g = torch.Generator().manual_seed(_stream_seed(self.cfg.seed, "bn"))
        return recalibrate_bn(snap, LATENT_SIZE, batches=self.cfg.bn_batches, batch_size=256,
                              generator=g, device=self.device)

    def write_samples(self, snap: nn.Module) -> None:
        """The grid of the fixed latents' faces, ``samples/iter_NNNNNN.png``."""
        with torch.inference_mode():
            imgs = tanh_images_to_uint8(snap(self.z_fixed))
        save_png(self.work / "samples" / f"iter_{self.iteration:06d}.png", image_grid(imgs))

    def _fd(self, snap: nn.Module) -> float:
        assert self.reference is not None and self.z_eval is not None
        assert self.extractor is not None

        def render(z: torch.Tensor) -> torch.Tensor:
            return ((snap(z).float() + 1.0) / 2.0).clamp_(0.0, 1.0)

        return self.reference.score(embed_generated(self.extractor, render, self.z_eval))

    def evaluate(self, snap: nn.Module) -> float | None:
        """FD of the EMA snapshot ``snap`` (and of the raw generator, which measures what
        the EMA brings); the better one becomes the best snapshot if it beats the best."""
        if self.reference is None or self.z_eval is None or self.extractor is None:
            return None
        fd = self._fd(snap)
        entry: dict[str, Any] = {"iteration": self.iteration, "fd": fd}
        candidates = [(fd, "ema", snap)]
        if self.cfg.eval_raw and self.cfg.ema_decay > 0:
            raw = self.snapshot("raw")
            entry["fd_raw"] = self._fd(raw)
            candidates.append((entry["fd_raw"], "raw", raw))
        self.history.append(entry)
        self.last_eval = self.iteration
        best_now, weights, module = min(candidates, key=lambda c: c[0])
        if self.best.update(best_now, self.iteration):
            self._keep_best(module, best_now, weights)
        floor = self.reference.floor
        ips = self.iteration / self.train_time_s if self.train_time_s > 0 else 0.0
        raw_txt = f"; raw G {entry['fd_raw']:.2f}" if "fd_raw" in entry else ""
        self.log(f"iteration {self.iteration}: FD {fd:.2f} (EMA{raw_txt}; real floor "
                 + ("n/a" if floor is None else f"{floor:.2f}")
                 + f"; best {self.best.best:.2f} at {self.best.best_at} {self.best_weights}; "
                 f"{ips:.1f} it/s)")
        return fd

    def _keep_best(self, snap: nn.Module, fd: float | None, weights: str = "ema") -> None:
        self.best.best, self.best.best_at, self.best_weights = fd, self.iteration, weights
        self.best_state = trainloop.module_tensors(snap)
        trainloop.save_tensors_atomic(self.work / BEST, self.best_state,
                                      {"iteration": str(self.iteration), "fd": json.dumps(fd),
                                       "weights": weights})

    # ------------------------------------------------------------------------------ loop
    def real_batch(self) -> torch.Tensor:
        """A batch of training faces in [-1, 1], randomly mirrored when ``cfg.flip``."""
        b, g_data = self.cfg.batch, self.streams["data"]
        idx = torch.randint(len(self.train_u8), (b,), generator=g_data, device=self.device)
        x = self.train_u8[idx].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        if self.cfg.flip:
            flip = torch.rand(b, generator=g_data, device=self.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x if self.cuda else x.contiguous()

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One D step and one G step; returns their losses (detached)."""
        cfg, loss, g_aug = self.cfg, self.cfg.loss, self.streams["aug"]
        amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and self.cuda)
        real = self.real_batch()
        z = torch.randn(cfg.batch, LATENT_SIZE, generator=self.streams["z"], device=self.device)
        with amp:
            fake = self.G(z)
            if self.D.uses_batch_norm:  # BatchNorm must not mix real and fake statistics
                d_real = self.D(augment(real, self.policy, g_aug)).float()
                d_fake = self.D(augment(fake.detach(), self.policy, g_aug)).float()
            else:  # one pass: half the kernel launches, one power iteration per D step
                both = self.D(augment(torch.cat((real, fake.detach())), self.policy, g_aug))
                d_real, d_fake = both.float().split(cfg.batch)
            loss_d = d_loss_fn(loss, d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)
        with amp:
            loss_g = g_loss_fn(loss, self.D(augment(fake, self.policy, g_aug)).float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        self.ema.update(self.G, self.iteration)
        return loss_d.detach(), loss_g.detach()

    def run(self) -> None:
        """Train up to ``cfg.iterations`` (or ``cfg.time_limit``); Ctrl-C checkpoints."""
        cfg = self.cfg
        self.G.train()
        self.D.train()
        clock, base_wall = trainloop.Stopwatch(), self.wall_time_s
        sums = torch.zeros(2, device=self.device)
        count = 0
        log = trainloop.JsonlLog(self.work / trainloop.LOG_JSONL)
        self.work.mkdir(parents=True, exist_ok=True)
        bar = trainloop.LoopProgress(cfg.iterations, initial=self.iteration, desc="training",
                                     unit="it", enabled=cfg.progress)
        try:
            while self.iteration < cfg.iterations:
                t0 = clock.elapsed()
                sums += torch.stack(self.step())
                count += 1
                self.iteration += 1
                it = self.iteration
                bar.advance()
                if it % cfg.log_every == 0 or it == cfg.iterations:
                    d, g = (sums / count).tolist()
                    if not (math.isfinite(d) and math.isfinite(g)):
                        raise ValueError(f"training diverged at iteration {it} (loss is NaN/inf)")
                    bar.advance(0, d_loss=f"{d:.3f}", g_loss=f"{g:.3f}")
                    log.append({"iteration": it, "d_loss": d, "g_loss": g})
                    sums.zero_()
                    count = 0
                self.train_time_s += clock.elapsed() - t0
                elapsed = clock.elapsed()
                self.wall_time_s = base_wall + elapsed
                out_of_time = cfg.time_limit is not None and elapsed >= cfg.time_limit
                self.periodic(final=it == cfg.iterations or out_of_time, bar=bar)
                if out_of_time and it < cfg.iterations:
                    self.stopped_early = True
                    self.log(f"time limit: stopped at iteration {it} of {cfg.iterations} after "
                             f"{elapsed:.0f} s; exporting the best snapshot so far "
                             "(--resume continues)")
                    break
        except KeyboardInterrupt:
            self.wall_time_s = base_wall + clock.elapsed()
            bar.close()
            save_run(self)
            self.log(f"interrupted: checkpoint at iteration {self.iteration} in {self.work}; "
                     "rerun with --resume to continue")
            raise
        bar.close()

    def periodic(self, *, final: bool, bar: trainloop.LoopProgress | None = None) -> None:
        """Samples, evaluation and checkpoint when their period (or the end) comes."""
        cfg, it = self.cfg, self.iteration
        want_eval = self.reference is not None and (it % cfg.eval_every == 0 or final) \
            and self.last_eval != it
        want_samples = it % cfg.sample_every == 0 or final
        if want_eval or want_samples:
            snap = self.snapshot()
            if want_samples:
                self.write_samples(snap)
            if want_eval:
                if bar is not None:
                    with bar.quiet():
                        self.evaluate(snap)
                else:
                    self.evaluate(snap)
            if final and self.reference is None:
                self._keep_best(snap, None)
        if it % cfg.checkpoint_every == 0 or final:
            save_run(self)

    def finish(self) -> None:
        """After the loop (or when resuming a finished run): make sure a best snapshot exists."""
        if self.reference is not None:
            if self.last_eval != self.iteration or self.best_state is None:
                self.evaluate(self.snapshot())
        elif self.best.best_at != self.iteration or self.best_state is None:
            self._keep_best(self.snapshot(), None)


# ------------------------------------------------------------------ checkpoint and resume
def _compat(trainer: Trainer) -> dict[str, Any]:
    """What a checkpoint must share with this run to be resumed by it."""
    ext = trainer.extractor
    metric = None if ext is None else {
        "extractor": str(getattr(ext, "sha256", "") or getattr(ext, "name", "")),
        "fd_samples": trainer.cfg.fd_samples}
    return {"recipe": trainer.cfg.recipe(), "data_pixels_sha256": trainer.pixels_sha256,
            "metric": metric}


def _modules(trainer: Trainer) -> dict[str, nn.Module]:
    return {"G": trainer.G, "D": trainer.D, "EMA": trainer.ema.module}


def run_state(trainer: Trainer) -> dict[str, Any]:
    """A run's checkpoint JSON document (counters, metrics so far, what must match)."""
    return {
        "iteration": trainer.iteration, "wall_time_s": trainer.wall_time_s,
        "train_time_s": trainer.train_time_s, "fd_per_snapshot": trainer.history,
        "fd_best": trainer.best.best, "best_iteration": trainer.best.best_at,
        "best_weights": trainer.best_weights, "last_eval": trainer.last_eval,
        "fd_floor": None if trainer.reference is None else trainer.reference.floor,
        **_compat(trainer),
    }


def save_run(trainer: Trainer) -> None:
    """Checkpoint a run's models, optimizers and random streams in its work folder."""
    tensors = trainloop.modules_tensors(_modules(trainer))
    opt_meta = {}
    for name, opt in (("G", trainer.opt_g), ("D", trainer.opt_d)):
        opt_tensors, opt_meta[name] = trainloop.optimizer_to_flat(opt, f"opt.{name}")
        tensors.update(opt_tensors)
    tensors.update({f"rng.{name}": g.get_state().clone()
                    for name, g in trainer.streams.items()})
    trainloop.save_checkpoint(trainer.work, tensors,
                              {**run_state(trainer), "optimizers": opt_meta})


def restore_run(trainer: Trainer) -> bool:
    """Load the work folder's checkpoint into ``trainer`` if there is one; returns whether
    it did.

    Raises:
        ValueError: the checkpoint was made by another recipe, data or metric, or does not
            load into the models.
    """
    work = trainer.work
    if not trainloop.has_checkpoint(work):
        return False
    tensors, state = trainloop.load_checkpoint(work)
    what = _mismatch(state, _compat(trainer))
    if what is not None:
        raise ValueError(
            f"resume: the checkpoint in {work} does not match this run ({what}); "
            "use the same options and data, or remove the work folder to start over"
        )
    try:
        trainloop.load_modules(tensors, _modules(trainer))
        for name, opt in (("G", trainer.opt_g), ("D", trainer.opt_d)):
            trainloop.optimizer_from_flat(opt, f"opt.{name}", tensors,
                                          state["optimizers"][name])
        for name, g in trainer.streams.items():
            g.set_state(tensors[f"rng.{name}"])
    except (KeyError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"resume: checkpoint in {work} cannot be loaded: {first}") from None
    trainer.iteration = int(state["iteration"])
    trainer.wall_time_s = float(state.get("wall_time_s", 0.0))
    trainer.train_time_s = float(state.get("train_time_s", 0.0))
    trainer.history = list(state.get("fd_per_snapshot", []))
    trainer.best.best = state.get("fd_best")
    trainer.best.best_at = int(state.get("best_iteration", -1))
    trainer.best_weights = str(state.get("best_weights", "ema"))
    trainer.last_eval = int(state.get("last_eval", -1))
    if (work / BEST).is_file():
        trainer.best_state = trainloop.load_tensors(work / BEST)
    return True


def train(cfg: GeneratorTrainConfig, *, extractor: EmbeddingExtractor | None = None,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or resume) and export the best snapshot as a generator weights folder.

    Args:
        cfg: the run's settings.
        extractor: embeddings for the metric (default: ``cfg.extractor`` loaded from the
            extractor registry; ``cfg.extractor == "none"`` disables the metric and exports
            the last snapshot).
        log: where one-line progress messages go (default: stderr).

    Raises:
        ValueError: bad settings or data, a checkpoint that does not match, divergence.
        ArtifactError: the extractor weights are missing or corrupt.
    """
    cfg.validate()
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    device = resolve_device(cfg.device)
    if cfg.amp and device.type != "cuda":
        raise ValueError("amp: bf16 autocast is only used on CUDA devices; drop --amp")
    work = cfg.work_dir()
    if trainloop.has_checkpoint(work) and not cfg.resume:
        raise ValueError(
            f"out: {work} holds a checkpoint of an earlier run; pass --resume to continue it, "
            "or remove that folder to start over"
        )
    if not cfg.metric_enabled():
        extractor = None
    elif extractor is None:  # load it first: a missing extractor fails before any decoding
        extractor = load_metric_extractor(cfg.extractor, device)
    images = load_image_set(cfg.data, cfg.resolution, cache=cfg.cache, progress=cfg.progress)
    say(f"data: {len(images.train)} training and "
        f"{0 if images.test is None else len(images.test)} test images from {images.source}")
    trainer = Trainer(cfg, images, device, extractor, say)
    if cfg.resume:
        if restore_run(trainer):
            say(f"resume: continuing from iteration {trainer.iteration} of {cfg.iterations}")
        else:
            say(f"resume: no checkpoint in {work}; starting at iteration 0")
    trainer.run()
    trainer.finish()
    return export(trainer)


__all__ = ["Trainer", "train"]
