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
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tlgan.training.augment import augment, parse_policy
from tlgan.training.checkpoint import (
    CHECKPOINT,
    load_checkpoint,
    module_tensors,
    optimizer_from_flat,
    optimizer_to_flat,
    save_checkpoint,
    split_prefix,
)
from tlgan.training.data import ImageSet, load_image_set
from tlgan.training.frechet import (
    EmbeddingExtractor,
    Reference,
    embed_generated,
    load_metric_extractor,
)
from tlgan.training.models import (
    D_ARCHS,
    D_NORMS,
    EMA,
    LATENT_SIZE,
    RESOLUTION,
    Discriminator,
    build_generator,
    dcgan_init,
    recalibrate_bn,
)

LOSSES = ("hinge", "ns")
BEST = "best.safetensors"
GRID = 64
# Seed offsets of the independent random streams (data, latents, augmentation, ...).
_STREAMS = {"data": 1, "z": 2, "aug": 3, "fixed": 4, "eval": 5, "bn": 6, "subset": 7}


def _stream_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + _STREAMS[name] * 7_919) % (2**63)


@dataclass
class TrainConfig:
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


def d_loss_fn(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_fn(loss: str, fake: torch.Tensor) -> torch.Tensor:
    if loss == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


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


def _save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    from tlgan_base.artifact import write_bytes_atomic

    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """G output in [-1, 1] (N, 3, H, W) -> uint8 (N, H, W, 3)."""
    u8 = ((x.float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return u8.permute(0, 2, 3, 1).contiguous().cpu().numpy()


class Trainer:
    """One training run: models, optimizers, random streams, metric reference, work folder."""

    def __init__(self, cfg: TrainConfig, images: ImageSet, device: torch.device,
                 extractor: EmbeddingExtractor | None, log: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.images = images
        self.device = device
        self.log = log
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
        dcgan_init(self.G)
        dcgan_init(self.D)
        self.G.to(device)
        self.D.to(device)
        if self.cuda:
            self.G.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.D.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.ema = EMA(self.G, cfg.ema_decay)
        betas = (cfg.beta1, cfg.beta2)
        fused = True if self.cuda else None  # one kernel per step on CUDA
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=betas, fused=fused)

        def gen(name: str, dev: torch.device) -> torch.Generator:
            g = torch.Generator(device=dev)
            g.manual_seed(_stream_seed(cfg.seed, name))
            return g

        self.g_data = gen("data", device)
        self.g_z = gen("z", device)
        self.g_aug = gen("aug", device)
        cpu = torch.device("cpu")
        self.z_fixed = torch.randn(GRID, LATENT_SIZE, generator=gen("fixed", cpu)).to(device)
        self.train_u8 = torch.from_numpy(images.train).to(device)
        self.pixels_sha256 = images.pixels_sha256()
        self.iteration = 0
        self.wall_time_s = 0.0
        self.train_time_s = 0.0
        self.history: list[dict[str, Any]] = []
        self.best_fd: float | None = None
        self.best_iteration = -1
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
                                      generator=gen("eval", cpu)).to(device)
            floor = self.reference.floor
            self.log("metric: real-vs-real floor (train vs test) "
                     + ("n/a (no test partition)" if floor is None else f"{floor:.2f}")
                     + f", n={cfg.fd_samples}")

    # ----------------------------------------------------------------------------- state
    def _compat(self) -> dict[str, Any]:
        ext = self.extractor
        metric = None if ext is None else {
            "extractor": str(getattr(ext, "sha256", "") or getattr(ext, "name", "")),
            "fd_samples": self.cfg.fd_samples}
        return {"recipe": self.cfg.recipe(), "data_pixels_sha256": self.pixels_sha256,
                "metric": metric}

    def state(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "wall_time_s": self.wall_time_s,
            "train_time_s": self.train_time_s,
            "fd_per_snapshot": self.history,
            "fd_best": self.best_fd,
            "best_iteration": self.best_iteration,
            "best_weights": self.best_weights,
            "last_eval": self.last_eval,
            "fd_floor": None if self.reference is None else self.reference.floor,
            **self._compat(),
        }

    def save(self) -> None:
        t: dict[str, torch.Tensor] = {}
        for prefix, mod in (("G", self.G), ("D", self.D), ("EMA", self.ema.module)):
            t.update({f"{prefix}.{k}": v for k, v in module_tensors(mod).items()})
        opt_meta = {}
        for name, opt in (("G", self.opt_g), ("D", self.opt_d)):
            tens, meta = optimizer_to_flat(opt, f"opt.{name}")
            t.update(tens)
            opt_meta[name] = meta
        for name, g in (("data", self.g_data), ("z", self.g_z), ("aug", self.g_aug)):
            t[f"rng.{name}"] = g.get_state().clone()
        state = self.state()
        state["optimizers"] = opt_meta
        save_checkpoint(self.work, t, state)

    def restore(self) -> bool:
        """Load the work folder's checkpoint if there is one; returns whether it did."""
        if not (self.work / CHECKPOINT).is_file():
            return False
        tensors, state = load_checkpoint(self.work)
        compat = self._compat()
        for key in ("recipe", "data_pixels_sha256", "metric"):
            if state.get(key) != compat[key]:
                if key == "recipe" and isinstance(state.get(key), dict):
                    diff = [k for k in compat[key] if state[key].get(k) != compat[key][k]]
                    what = f"recipe field(s) {', '.join(diff)} differ"
                elif key == "metric":
                    what = "the metric's extractor or --fd-samples differ"
                else:
                    what = "the training images differ"
                raise ValueError(
                    f"resume: the checkpoint in {self.work} does not match this run ({what}); "
                    "use the same options and data, or remove the work folder to start over"
                )
        try:
            self.G.load_state_dict(split_prefix(tensors, "G"))
            self.D.load_state_dict(split_prefix(tensors, "D"))
            self.ema.module.load_state_dict(split_prefix(tensors, "EMA"))
            optimizer_from_flat(self.opt_g, "opt.G", tensors, state["optimizers"]["G"])
            optimizer_from_flat(self.opt_d, "opt.D", tensors, state["optimizers"]["D"])
            for name, g in (("data", self.g_data), ("z", self.g_z), ("aug", self.g_aug)):
                g.set_state(tensors[f"rng.{name}"])
        except (KeyError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"resume: checkpoint in {self.work} cannot be loaded: {first}") \
                from None
        self.iteration = int(state["iteration"])
        self.wall_time_s = float(state.get("wall_time_s", 0.0))
        self.train_time_s = float(state.get("train_time_s", 0.0))
        self.history = list(state.get("fd_per_snapshot", []))
        self.best_fd = state.get("fd_best")
        self.best_iteration = int(state.get("best_iteration", -1))
        self.best_weights = str(state.get("best_weights", "ema"))
        self.last_eval = int(state.get("last_eval", -1))
        if (self.work / BEST).is_file():
            from safetensors.torch import load_file

            self.best_state = load_file(str(self.work / BEST))
        return True

    # ------------------------------------------------------------------------- snapshots
    def snapshot(self, weights: str = "ema") -> nn.Module:
        """A copy of the EMA (or the raw, trained) generator in eval mode, with BatchNorm
        statistics re-estimated for its own weights."""
        snap = copy.deepcopy(self.ema.module if weights == "ema" else self.G)
        g = torch.Generator().manual_seed(_stream_seed(self.cfg.seed, "bn"))
        return recalibrate_bn(snap, LATENT_SIZE, batches=self.cfg.bn_batches, batch_size=256,
                              generator=g, device=self.device)

    def write_samples(self, snap: nn.Module) -> Path:
        with torch.inference_mode():
            imgs = _to_uint8(snap(self.z_fixed))
        path = self.work / "samples" / f"iter_{self.iteration:06d}.png"
        _save_png(path, image_grid(imgs))
        return path

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
        if self.best_fd is None or best_now < self.best_fd:
            self._keep_best(module, best_now, weights)
        floor = self.reference.floor
        ips = self.iteration / self.train_time_s if self.train_time_s > 0 else 0.0
        raw_txt = f"; raw G {entry['fd_raw']:.2f}" if "fd_raw" in entry else ""
        self.log(f"iteration {self.iteration}: FD {fd:.2f} (EMA{raw_txt}; real floor "
                 + ("n/a" if floor is None else f"{floor:.2f}")
                 + f"; best {self.best_fd:.2f} at {self.best_iteration} {self.best_weights}; "
                 f"{ips:.1f} it/s)")
        return fd

    def _keep_best(self, snap: nn.Module, fd: float | None, weights: str = "ema") -> None:
        from safetensors.torch import save_file

        self.best_fd = fd
        self.best_iteration = self.iteration
        self.best_weights = weights
        self.best_state = module_tensors(snap)
        tmp = self.work / f".{BEST}.tmp"
        self.work.mkdir(parents=True, exist_ok=True)
        save_file(self.best_state, str(tmp),
                  metadata={"iteration": str(self.iteration), "fd": json.dumps(fd),
                            "weights": weights})
        tmp.replace(self.work / BEST)

    # ------------------------------------------------------------------------------ loop
    def real_batch(self) -> torch.Tensor:
        b = self.cfg.batch
        idx = torch.randint(len(self.train_u8), (b,), generator=self.g_data, device=self.device)
        x = self.train_u8[idx].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        if self.cfg.flip:
            flip = torch.rand(b, generator=self.g_data, device=self.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x if self.cuda else x.contiguous()

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, loss = self.cfg, self.cfg.loss
        amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and self.cuda)
        real = self.real_batch()
        z = torch.randn(cfg.batch, LATENT_SIZE, generator=self.g_z, device=self.device)
        with amp:
            fake = self.G(z)
            if self.D.uses_batch_norm:  # BatchNorm must not mix real and fake statistics
                d_real = self.D(augment(real, self.policy, self.g_aug)).float()
                d_fake = self.D(augment(fake.detach(), self.policy, self.g_aug)).float()
            else:  # one pass: half the kernel launches, one power iteration per D step
                both = self.D(augment(torch.cat((real, fake.detach())), self.policy, self.g_aug))
                d_real, d_fake = both.float().split(cfg.batch)
            loss_d = d_loss_fn(loss, d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        self.D.requires_grad_(False)
        with amp:
            loss_g = g_loss_fn(loss, self.D(augment(fake, self.policy, self.g_aug)).float())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        self.ema.update(self.G, self.iteration)
        return loss_d.detach(), loss_g.detach()

    def run(self) -> None:
        from tlgan_base.progress import progress_bar

        cfg = self.cfg
        self.G.train()
        self.D.train()
        start_wall = time.perf_counter()
        base_wall = self.wall_time_s
        sums = torch.zeros(2, device=self.device)
        count = 0
        log_path = self.work / "log.jsonl"
        self.work.mkdir(parents=True, exist_ok=True)
        bar = progress_bar(total=cfg.iterations, initial=self.iteration, desc="training",
                           unit="it", enabled=cfg.progress)
        try:
            while self.iteration < cfg.iterations:
                t0 = time.perf_counter()
                ld, lg = self.step()
                sums += torch.stack((ld, lg))
                count += 1
                self.iteration += 1
                bar.update(1)
                it = self.iteration
                if it % cfg.log_every == 0 or it == cfg.iterations:
                    d, g = (sums / count).tolist()
                    if not (math.isfinite(d) and math.isfinite(g)):
                        raise ValueError(f"training diverged at iteration {it} (loss is NaN/inf)")
                    bar.set_postfix(d_loss=f"{d:.3f}", g_loss=f"{g:.3f}")
                    with open(log_path, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps({"iteration": it, "d_loss": d, "g_loss": g}) + "\n")
                    sums.zero_()
                    count = 0
                self.train_time_s += time.perf_counter() - t0
                elapsed = time.perf_counter() - start_wall
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
            self.wall_time_s = base_wall + time.perf_counter() - start_wall
            bar.close()
            self.save()
            self.log(f"interrupted: checkpoint at iteration {self.iteration} in {self.work}; "
                     "rerun with --resume to continue")
            raise
        bar.close()

    def periodic(self, *, final: bool, bar: Any = None) -> None:
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
                    with bar.external_write_mode():
                        self.evaluate(snap)
                else:
                    self.evaluate(snap)
            if final and self.reference is None:
                self._keep_best(snap, None)
        if it % cfg.checkpoint_every == 0 or final:
            self.save()

    def finish(self) -> None:
        """After the loop (or when resuming a finished run): make sure a best snapshot exists."""
        if self.reference is not None:
            if self.last_eval != self.iteration or self.best_state is None:
                self.evaluate(self.snapshot())
        elif self.best_iteration != self.iteration or self.best_state is None:
            self._keep_best(self.snapshot(), None)


def train(cfg: TrainConfig, *, extractor: EmbeddingExtractor | None = None,
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
    from tlgan_base.devices import resolve_device

    cfg.validate()
    say = log or (lambda m: print(m, file=sys.stderr, flush=True))
    device = resolve_device(cfg.device)
    if cfg.amp and device.type != "cuda":
        raise ValueError("amp: bf16 autocast is only used on CUDA devices; drop --amp")
    work = cfg.work_dir()
    has_ckpt = (work / CHECKPOINT).is_file()
    if has_ckpt and not cfg.resume:
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
        if trainer.restore():
            say(f"resume: continuing from iteration {trainer.iteration} of {cfg.iterations}")
        else:
            say(f"resume: no checkpoint in {work}; starting at iteration 0")
    trainer.run()
    trainer.finish()
    return export(trainer)


def export(trainer: Trainer) -> TrainResult:
    """Write the best snapshot as a ``generator-weights`` folder and check it loads."""
    from safetensors.torch import save_file

    from tlgan.generators import load_generator
    from tlgan_base.artifact import atomic_artifact_dir, save_config

    cfg = trainer.cfg
    out = Path(cfg.out)
    assert trainer.best_state is not None
    module = build_generator(cfg.ngf)
    module.load_state_dict(trainer.best_state)
    module.eval()
    with torch.inference_mode():
        samples = _to_uint8(module(trainer.z_fixed.cpu()))
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
        "snapshot_iteration": trainer.best_iteration,
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
            "fd_best": trainer.best_fd,
            "fd_floor": None if ref is None else ref.floor,
            "fd_per_snapshot": trainer.history,
            **({} if ref is None else ref.describe()),
        },
    }
    with atomic_artifact_dir(out) as tmp:
        save_file({k: v.contiguous() for k, v in trainer.best_state.items()},
                  str(tmp / "generator.safetensors"), metadata={"format": "pt"})
        _save_png(tmp / "samples.png", image_grid(samples))
        save_config(tmp, config)
    gen = load_generator(str(out), device="cpu")
    check = gen.render(trainer.z_fixed[:4].cpu().numpy())
    if check.shape != (4, RESOLUTION, RESOLUTION, 3):
        raise RuntimeError(f"exported generator renders {check.shape}, expected 64x64 faces")
    fd = trainer.best_fd
    trainer.log(f"wrote {out} ({trainer.best_weights} snapshot of iteration "
                f"{trainer.best_iteration}"
                + ("" if fd is None else f", FD {fd:.2f}") + ")")
    return TrainResult(out=out, iterations=trainer.iteration,
                       best_iteration=trainer.best_iteration, fd_best=fd,
                       fd_floor=None if ref is None else ref.floor,
                       wall_time_s=trainer.wall_time_s, iterations_per_s=ips,
                       config=json.loads((out / "config.json").read_text(encoding="utf-8")))


def score_generator(generator: str | None, data: str, *, n: int = 2000,
                    extractor: EmbeddingExtractor | str | None = None, device: str = "cpu",
                    seed: int = 0, truncation: float = 1.0) -> dict[str, Any]:
    """FD of a generator's faces to a data directory's test faces, with the real floor.

    The latents are standard normal times ``truncation`` (psi in (0, 1]).

    Returns a JSON-ready dict: ``fd``, ``floor``, ``n``, ``n_reference``, ``generator``,
    ``extractor``, ``data_checksum``, ``truncation``.
    """
    from tlgan.generators import load_generator
    from tlgan.latents import check_truncation
    from tlgan_base.devices import resolve_device

    if n < 2:
        raise ValueError(f"n: must be >= 2, got {n}")
    check_truncation(truncation)
    dev = resolve_device(device)
    gen = load_generator(generator, dev)
    images = load_image_set(data, gen.resolution)
    ext = extractor if extractor is not None and not isinstance(extractor, str) \
        else load_metric_extractor(extractor, dev)
    ref = Reference(ext, images.train, images.test, n, dev, seed=_stream_seed(seed, "subset"))
    z = torch.randn(n, gen.latent_size, generator=torch.Generator().manual_seed(
        _stream_seed(seed, "eval"))) * truncation
    emb = embed_generated(ext, gen.render_tensor, z.to(dev))
    return {
        "fd": ref.score(emb),
        "floor": ref.floor,
        "n": n,
        "n_reference": ref.n_ref,
        "reference": ref.reference,
        "generator": gen.name,
        "extractor": ref.extractor_name,
        "data_checksum": images.source_sha256,
        "truncation": truncation,
    }


__all__ = ["TrainConfig", "TrainResult", "Trainer", "score_generator", "train"]
