"""Pickle-free training checkpoints: tensors in safetensors, everything else in JSON.

A checkpoint is one ``checkpoint.safetensors`` holding, under prefixes, the state dicts of the
modules, the tensors of the optimizers' states (``opt.<name>.state.<param index>.<key>``) and
the random generators' states (``rng.<name>``); its metadata holds one JSON document
(``state``: iteration, optimizer param groups and scalar state, metrics so far, the recipe).
The same JSON is mirrored to ``state.json`` for people to read; the safetensors metadata is
authoritative, so a crash between the two writes cannot mismatch them. Both writes are
atomic (temporary file + rename).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlgan_base.artifact import ArtifactError, atomic_path, write_json_atomic

CHECKPOINT = "checkpoint.safetensors"
STATE_JSON = "state.json"


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def module_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's state dict as contiguous CPU tensors (safetensors-ready)."""
    return {k: _cpu(v) for k, v in module.state_dict().items()}


def optimizer_to_flat(opt: torch.optim.Optimizer, prefix: str
                      ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors and a JSON-able remainder."""
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
                        tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
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


def save_checkpoint(work: Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    """Write ``checkpoint.safetensors`` (+ ``state.json``) in ``work`` atomically."""
    from safetensors.torch import save_file

    path = work / CHECKPOINT
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"state": json.dumps(state)})
    write_json_atomic(work / STATE_JSON, state)
    return path


def load_checkpoint(work: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint` (CPU tensors, state dict).

    Raises:
        ArtifactError: there is no checkpoint, or it cannot be read.
    """
    from safetensors import SafetensorError, safe_open

    path = work / CHECKPOINT
    if not path.is_file():
        raise ArtifactError(f"resume: no checkpoint {path} to resume from")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            for key in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                tensors[key] = fh.get_tensor(key)
        state = json.loads(meta["state"])
    except (OSError, KeyError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ArtifactError(f"resume: cannot read checkpoint {path}: {exc}") from None
    if not isinstance(state, dict):
        raise ArtifactError(f"resume: checkpoint {path} has no state document")
    return tensors, state


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``tensors`` under ``prefix.``, with the prefix removed."""
    head = prefix + "."
    return {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}
