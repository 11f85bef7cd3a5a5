"""The pieces every training loop needs, written once: checkpoints and resume, best/patience
tracking, progress, an append-only ``log.jsonl`` and the atomic export of the result.

Checkpoints are pickle-free: one ``checkpoint.safetensors`` holds the tensors (module state
dicts, optimizer states, random generator states, under prefixes) and, in its metadata, one
JSON document (``state``: counters, metrics so far, the recipe). The same JSON is mirrored to
``state.json`` for people to read; the safetensors metadata is authoritative, so a crash
between the two writes cannot mismatch them. Every write is atomic (temporary file + rename):
an interrupted run leaves the previous checkpoint, never half of one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from tlgan_base.artifact import (
    ArtifactError,
    atomic_artifact_dir,
    atomic_path,
    load_config,
    save_config,
    write_json_atomic,
)
from tlgan_base.progress import progress_bar

T = TypeVar("T")

CHECKPOINT = "checkpoint.safetensors"
STATE_JSON = "state.json"
LOG_JSONL = "log.jsonl"

__all__ = [
    "CHECKPOINT", "LOG_JSONL", "STATE_JSON", "JsonlLog", "LoopProgress", "Patience",
    "StepPlan", "Stopwatch", "cosine_schedule", "export_artifact", "has_checkpoint",
    "load_checkpoint", "load_modules", "load_tensors", "load_weights_into", "module_tensors",
    "modules_tensors", "optimizer_from_flat", "optimizer_to_flat", "read_model_config",
    "record_evaluation", "resume_run", "run_steps", "save_checkpoint", "save_run",
    "save_tensors_atomic", "split_prefix",
]


# ------------------------------------------------------------------------------ tensors
def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def module_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict as contiguous CPU tensors (safetensors-ready)."""
    return {k: _cpu(v) for k, v in module.state_dict().items()}


def split_prefix(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` under ``prefix.``, with the prefix removed."""
    head = prefix + "."
    return {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}


def modules_tensors(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """The state dicts of named modules as one flat dict, each key under its module's name
    (``{"G": g}`` gives ``G.<key>``); :func:`load_modules` is the inverse."""
    return {f"{name}.{k}": v for name, mod in modules.items()
            for k, v in module_tensors(mod).items()}


def load_modules(tensors: Mapping[str, torch.Tensor], modules: Mapping[str, nn.Module]) -> None:
    """Load each of ``modules`` from the entries of ``tensors`` under its name (strictly:
    a missing or unexpected key raises ``RuntimeError``)."""
    for name, mod in modules.items():
        mod.load_state_dict(split_prefix(tensors, name))


def save_tensors_atomic(path: Path, tensors: Mapping[str, torch.Tensor],
                        metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``tensors`` to the safetensors file ``path`` through a temporary file and an
    atomic rename (so a reader never sees half a file); returns ``path``."""
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata=None if metadata is None else dict(metadata))
    return Path(path)


def load_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file written by :func:`save_tensors_atomic` (no unpickling).

    Raises:
        ArtifactError: the file is missing or cannot be read.
    """
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as fh:
            return {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 - not a dict
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ArtifactError(f"cannot read tensors {path}: {exc}") from None


# --------------------------------------------------------------------------- optimizers
def optimizer_to_flat(opt: torch.optim.Optimizer, prefix: str
                      ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors (under ``prefix.state.<index>.<key>``)
    and a JSON-able remainder (param groups and scalar state)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"{prefix}.state.{idx}.{key}"] = _cpu(val)
            else:
                scalars.setdefault(str(idx), {})[key] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(opt: torch.optim.Optimizer, prefix: str,
                        tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Inverse of :func:`optimizer_to_flat`; loads into ``opt`` (tensors move to its device)."""
    state: dict[int, dict[str, Any]] = {}
    head = f"{prefix}.state."
    for name, val in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[key] = val
    for idx, sc in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(sc)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})


# --------------------------------------------------------------------------- checkpoints
def has_checkpoint(work: Path) -> bool:
    """Whether the work folder ``work`` holds a checkpoint to resume from."""
    return (Path(work) / CHECKPOINT).is_file()


def save_checkpoint(work: Path, tensors: Mapping[str, torch.Tensor],
                    state: Mapping[str, Any]) -> Path:
    """Write ``checkpoint.safetensors`` (tensors + the JSON ``state`` in its metadata) and
    its ``state.json`` mirror in ``work``, each atomically; returns the checkpoint's path."""
    work = Path(work)
    path = save_tensors_atomic(work / CHECKPOINT, tensors, {"state": json.dumps(state)})
    write_json_atomic(work / STATE_JSON, state)
    return path


def load_checkpoint(work: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: (CPU tensors, state document).

    Raises:
        ArtifactError: there is no checkpoint, or it cannot be read.
    """
    path = Path(work) / CHECKPOINT
    if not path.is_file():
        raise ArtifactError(f"resume: no checkpoint {path} to resume from")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
        state = json.loads(meta["state"])
    except (OSError, KeyError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ArtifactError(f"resume: cannot read checkpoint {path}: {exc}") from None
    if not isinstance(state, dict):
        raise ArtifactError(f"resume: checkpoint {path} has no state document")
    return tensors, state


def _without_steps(recipe: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in recipe.items() if k != "steps"}  # steps: the new target


def save_run(work: Path, modules: Mapping[str, nn.Module], opt: torch.optim.Optimizer,
             sched: Any, *, step: int, best: Patience, history: list[dict[str, Any]],
             recipe: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Path:
    """Checkpoint a run of one optimizer and one scheduler (``state_dict``): its modules,
    their optimizer (under ``opt``), the schedule, the step, the best score and patience
    counters, the evaluations so far, the recipe and the trainer's own ``extra`` counters
    (JSON values; keys other than the ones above); :func:`resume_run` is the inverse."""
    tensors = modules_tensors(modules)
    opt_t, opt_meta = optimizer_to_flat(opt, "opt")
    tensors.update(opt_t)
    return save_checkpoint(work, tensors, {
        **(extra or {}), "step": step, "best": best.best, "best_at": best.best_at,
        "bad_evals": best.bad, "history": history, "optimizer": opt_meta,
        "scheduler": sched.state_dict(), "recipe": dict(recipe)})


def resume_run(work: Path, modules: Mapping[str, nn.Module], opt: torch.optim.Optimizer,
               sched: Any, best: Patience, recipe: Mapping[str, Any]) -> dict[str, Any]:
    """Load a checkpoint of :func:`save_run` made with the same ``recipe`` (its ``steps``
    may differ: it is the new target) into ``modules``, ``opt``, ``sched`` and ``best``;
    returns the state document (``step``, ``history`` and the ``extra`` counters saved).

    Raises:
        ArtifactError: no checkpoint, or one made with another recipe.
    """
    tensors, state = load_checkpoint(work)
    if _without_steps(state.get("recipe") or {}) != _without_steps(recipe):
        raise ArtifactError(f"resume: the checkpoint in {work} was made with another "
                            "recipe; start a fresh run (another --work folder)")
    load_modules(tensors, modules)
    optimizer_from_flat(opt, "opt", tensors, state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    best.best, best.bad = state["best"], state["bad_evals"]
    best.best_at = state.get("best_at", -1)
    return state


# ------------------------------------------------------------------------ best / patience
@dataclass
class Patience:
    """The best score so far and how many evaluations have passed without beating it.

    Attributes:
        patience: evaluations without improvement after which :attr:`exhausted` is true
            (0: never, no early stopping).
        mode: ``"min"`` (lower is better: a loss, a distance) or ``"max"`` (an AUC).
        best: the best score so far (``None``: none yet, any score improves).
        best_at: the step, epoch or iteration of ``best`` (-1: none yet).
        bad: evaluations since the last improvement.
    """

    patience: int = 0
    mode: str = "min"
    best: float | None = None
    best_at: int = -1
    bad: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode: must be 'min' or 'max', got {self.mode!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) \
                or self.patience < 0:
            raise ValueError(f"patience: must be an integer >= 0, got {self.patience!r}")

    def improves(self, score: float) -> bool:
        """Whether ``score`` beats the best so far (strictly; NaN never does)."""
        if math.isnan(score):
            return False
        if self.best is None:
            return True
        return score < self.best if self.mode == "min" else score > self.best

    def update(self, score: float, at: int) -> bool:
        """Record one evaluation at ``at``; returns whether it is the new best."""
        if self.improves(score):
            self.best, self.best_at, self.bad = score, at, 0
            return True
        self.bad += 1
        return False

    @property
    def exhausted(self) -> bool:
        """Whether ``patience`` evaluations in a row failed to improve (early stop)."""
        return self.patience > 0 and self.bad >= self.patience


def record_evaluation(entry: Mapping[str, Any], score: float, *, history: list[dict[str, Any]],
                      log: JsonlLog, best: Patience, snapshot: Path, module: nn.Module) -> str:
    """One evaluation of a loop: ``entry`` (its step under ``"step"``) appended to
    ``history`` and ``log``; when ``score`` is the best so far, ``module`` saved to
    ``snapshot``. Returns the note for the run's message: ``"(best)"`` or ``"(N without
    gain)"``."""
    history.append(dict(entry))
    log.append(entry)
    if best.update(score, int(entry["step"])):
        save_tensors_atomic(snapshot, module_tensors(module))
    return "(best)" if best.bad == 0 else f"({best.bad} without gain)"


# ------------------------------------------------------------------------------- timing
class Stopwatch:
    """Seconds since it was made (monotonic clock), against an optional budget."""

    def __init__(self, budget_s: float | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if budget_s is not None and not budget_s > 0:
            raise ValueError(f"budget_s: must be a positive number of seconds, got {budget_s}")
        self.budget_s = budget_s
        self._clock = clock
        self.start = clock()

    def elapsed(self) -> float:
        """Seconds since the start."""
        return self._clock() - self.start

    def fraction(self) -> float | None:
        """The share of the budget spent (may exceed 1); ``None`` without a budget."""
        return None if self.budget_s is None else self.elapsed() / self.budget_s

    def expired(self) -> bool:
        """Whether the budget is spent (never without a budget)."""
        return self.budget_s is not None and self.elapsed() >= self.budget_s


# ------------------------------------------------------------------------------- progress
class LoopProgress:
    """A training loop's progress: a bar over its steps (see
    :func:`tlgan_base.progress.progress_bar`) and one-line messages that do not tear it."""

    def __init__(self, total: int, *, desc: str, unit: str = "step", initial: int = 0,
                 enabled: bool = True, leave: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        self.bar = progress_bar(total=total, initial=initial, desc=desc, unit=unit,
                                enabled=enabled, leave=leave)
        self._log = log

    def advance(self, n: int = 1, **postfix: str) -> None:
        """Count ``n`` steps done; ``postfix`` values (already formatted) are shown beside."""
        self.bar.update(n)
        if postfix:
            self.bar.set_postfix(refresh=False, **postfix)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """A block whose output (messages, other bars) goes above the bar, not through it."""
        with self.bar.external_write_mode():
            yield

    def say(self, message: str) -> None:
        """Send one message to the run's log without tearing the bar."""
        if self._log is not None:
            with self.quiet():
                self._log(message)

    def close(self) -> None:
        """Finish the bar (idempotent)."""
        self.bar.close()

    def __enter__(self) -> LoopProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -------------------------------------------------------------------------------- log
class JsonlLog:
    """An append-only JSON-lines log (``log.jsonl``): one object per line, flushed per line,
    earlier lines never rewritten (a resumed run appends to its first run's log)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one line at the end of the log (creating its folder)."""
        line = json.dumps(dict(record))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        """Every record so far (an empty list when there is no log yet)."""
        if not self.path.is_file():
            return []
        text = self.path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------------------- export
def export_artifact(out: str | os.PathLike[str], config: Mapping[str, Any],
                    write_files: Callable[[Path], None]) -> dict[str, Any]:
    """Write an artifact folder atomically: ``write_files(tmp)`` fills a temporary folder,
    ``config.json`` (with the sha256 of every file) is added, and the folder replaces
    ``out`` in one rename; on any error ``out`` is left as it was. Returns the config
    as written."""
    with atomic_artifact_dir(out) as tmp:
        write_files(tmp)
        return save_config(tmp, config)


def cosine_schedule(opt: torch.optim.Optimizer, steps: int, floor: float = 0.05
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """The trainers' learning-rate schedule: cosine decay from the optimizer's rate to
    ``floor`` times it over ``steps`` steps, held there after.

    Raises:
        ValueError: ``steps`` < 1 (named).
    """
    if steps < 1:
        raise ValueError(f"steps: must be >= 1, got {steps}")
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: floor + (1.0 - floor) * 0.5 * (1 + math.cos(math.pi * min(s, steps)
                                                                   / steps)))


@dataclass(frozen=True)
class StepPlan:
    """How :func:`run_steps` runs a training loop: to ``steps`` from ``start``, evaluating
    every ``eval_every`` steps (and at the last), checkpointing every ``checkpoint_every``,
    within ``max_minutes`` (None: no limit), with a progress bar named ``desc`` showing the
    step's losses in ``formats`` (name -> format spec) every 25 steps."""

    steps: int
    start: int
    eval_every: int
    checkpoint_every: int
    max_minutes: float | None
    desc: str
    formats: Mapping[str, str]
    progress: bool = True


def run_steps(plan: StepPlan, train_step: Callable[[], Mapping[str, float]],
              evaluate: Callable[[Mapping[str, float], float, Callable[[str], None]], bool],
              checkpoint: Callable[[], None], say: Callable[[str], None], *,
              on_step: Callable[[float], None] | None = None,
              checkpoint_on_timeout: bool = True) -> str:
    """The trainers' loop: call ``train_step`` (one optimizer step; it returns the step's
    losses) until ``plan.steps``; ``evaluate(losses, seconds, say)`` at each evaluation
    returns whether patience ran out; ``checkpoint()`` at each checkpoint and at the end (not
    after running out of time when ``checkpoint_on_timeout`` is False); ``on_step(seconds)``
    after each step. Returns why it stopped: ``"steps"``, ``"max_minutes"`` or
    ``"early_stop"``."""
    clock = Stopwatch(None if plan.max_minutes is None else plan.max_minutes * 60,
                      clock=time.monotonic)
    reason, step = "steps", plan.start
    with LoopProgress(plan.steps, initial=plan.start, desc=plan.desc, unit="step",
                      enabled=plan.progress, log=say) as bar:
        while step < plan.steps:
            if clock.expired():
                reason = "max_minutes"
                break
            losses = train_step()
            step += 1
            if on_step is not None:
                on_step(clock.elapsed())
            bar.advance(1, **({} if step % 25 else {k: format(losses[k], f)
                                                    for k, f in plan.formats.items()}))
            if (step % plan.eval_every == 0 or step == plan.steps) and evaluate(
                    losses, clock.elapsed(), bar.say):
                reason = "early_stop"
                break
            if step % plan.checkpoint_every == 0:
                checkpoint()
    if reason != "max_minutes" or checkpoint_on_timeout:
        checkpoint()
    return reason


def read_model_config(folder: Path, kind: str, weights_file: str, architecture: str,
                      what: str, parse: Callable[[dict[str, Any]], T]
                      ) -> tuple[dict[str, Any], T]:
    """Read the ``config.json`` of a model folder written by :func:`export_artifact`: of
    ``kind``, every file checked against its sha256, listing ``weights_file``, of the
    network ``architecture``; ``parse(config)`` reads what the caller needs from it.

    Raises:
        ArtifactError: missing or corrupt files, or a config that is not a valid ``what``
            config (``parse`` raising KeyError, TypeError or ValueError).
    """
    config = load_config(folder, kind=kind, verify=True)
    if weights_file not in config.get("files", {}):
        raise ArtifactError(f"{folder / 'config.json'} does not list {weights_file}")
    try:
        name = config["architecture"]["name"]
        if name != architecture:
            raise ValueError(f"unknown architecture {name!r}")
        return config, parse(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{folder / 'config.json'} is not a valid {what} config "
                            f"({type(exc).__name__}: {exc})") from None


def load_weights_into(module: nn.Module, path: Path, what: str) -> None:
    """Load a safetensors state dict into ``module`` (strictly; no unpickling).

    Raises:
        ArtifactError: the file is missing or corrupt, or does not fit ``module`` (the
            ``what`` its config describes).
    """
    try:
        module.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    except (SafetensorError, OSError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ArtifactError(f"{path} does not load into the {what} in its config.json "
                            f"({first})") from None
