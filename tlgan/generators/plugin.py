"""Bring your own generator, without editing tlgan.

A plug-in is a small JSON file next to (or pointing at) the operator's weights::

    {
      "kind": "generator-plugin",
      "name": "my-gan",
      "format": "torchscript",          # or "torch-export" or "state_dict"
      "file": "my_gan.pt",              # relative to this JSON file
      "sha256": "…",                    # required: the file's sha256, verified before loading
      "latent_size": 100,
      "resolution": 64,
      "value_range": [-1, 1],           # the module's output range
      "spatial_latent": false,          # true: the module wants z as (N, L, 1, 1)
      "module": "my_pkg.models:Generator",   # state_dict only: an importable nn.Module class
      "kwargs": {"nz": 100},                 # state_dict only: its constructor arguments
      "state_dict_key": null,                # state_dict only: key inside a checkpoint dict
      "prior": {                             # optional: z's Gaussian prior (default N(0, I))
        "mean": [0.1, ...],                  #   (latent_size,) inline, or "mean.npy" ...
        "cov": "cov.npy",                    #   (latent_size, latent_size) inline or .npy
        "cov_sha256": "…"                    #   ... with the .npy file's sha256
      }
    }

``prior`` is for autoencoder/VAE decoders whose latents are not standard normal: seed ``s``
then renders ``mean + chol(cov) @ eps_s`` (``eps_s`` the seed's standard-normal draw),
truncation pulls toward ``mean`` and slerp turns around it. Either key may be left out (zero
mean, identity covariance). A value given as a file name is a ``.npy`` file next to this JSON
file (loaded with ``allow_pickle=False``) and needs ``mean_sha256`` / ``cov_sha256``.

``sha256`` is required: it is what tells a corrupt, truncated or swapped weights file from
the one the plug-in was written for (``sha256sum my_gan.pt``).

``state_dict`` files are read with safetensors or ``torch.load(weights_only=True)``.
TorchScript and torch.export archives contain code: load only files you produced yourself.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tlgan.generators.base import FaceGenerator
from tlgan.generators.checks import load_into, load_state_dict, verify_file
from tlgan.latents import DEFAULT_SPACE, LatentSpace
from tlgan_base.artifact import ArtifactError, read_json_object

FORMATS = ("torchscript", "torch-export", "state_dict")


class _ExportedModule(nn.Module):
    """Wrap a torch.export program so it behaves like an nn.Module."""

    def __init__(self, program: Any) -> None:
        super().__init__()
        self.inner = program.module()

    def train(self, mode: bool = True) -> _ExportedModule:
        # Exported programs are frozen in eval mode and refuse train()/eval().
        self.training = mode
        return self

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(z)
        return out


def _field(cfg: dict[str, Any], key: str, typ: type, path: Path) -> Any:
    if key not in cfg:
        raise ArtifactError(f"generator plug-in {path}: field {key!r} is missing")
    value = cfg[key]
    if typ is int and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ArtifactError(f"generator plug-in {path}: field {key!r} must be a positive integer")
    if typ is str and not isinstance(value, str):
        raise ArtifactError(f"generator plug-in {path}: field {key!r} must be a string")
    return value


def _sha256_field(cfg: dict[str, Any], what: str) -> str:
    """The plug-in's required ``sha256`` (64 hex digits, lower-cased), or ArtifactError."""
    value = cfg.get("sha256")
    if value is None or value == "":
        raise ArtifactError(f"{what}: field 'sha256' is missing; add the weights file's "
                            "sha256 (sha256sum FILE) so a corrupt file is refused")
    if (not isinstance(value, str) or len(value) != 64
            or any(c not in "0123456789abcdef" for c in value.lower())):
        raise ArtifactError(f"{what}: field 'sha256' must be 64 hex digits (sha256sum FILE)")
    return value.lower()


def _prior_array(prior: dict[str, Any], key: str, path: Path, what: str) -> np.ndarray | None:
    """``prior[key]``: an inline (nested) list of numbers, or the name of a .npy file next
    to the plug-in JSON verified against ``prior[key + "_sha256"]``; None when absent."""
    value = prior.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        file = path.parent / value
        if not file.is_file():
            raise ArtifactError(f"{what}: prior {key} file {file} is missing")
        sha = prior.get(f"{key}_sha256")
        if (not isinstance(sha, str) or len(sha) != 64
                or any(c not in "0123456789abcdef" for c in sha.lower())):
            raise ArtifactError(f"{what}: prior '{key}_sha256' must be the 64 hex digits of "
                                f"{value} (sha256sum {value})")
        verify_file(file, sha.lower(), what)
        try:
            return np.load(file, allow_pickle=False).astype(np.float64)
        except (OSError, ValueError, EOFError) as exc:
            raise ArtifactError(f"{what}: prior {key} file {file} is not a readable .npy "
                                f"file: {exc}") from exc
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArtifactError(f"{what}: prior {key} must be numbers or a .npy file name") from None


def plugin_prior(cfg: dict[str, Any], path: Path, latent_size: int) -> LatentSpace | None:
    """The z prior a plug-in declares (``"prior": {"mean": ..., "cov": ...}``), or None for
    the standard normal; ArtifactError naming the plug-in for a bad mean or covariance."""
    what = f"generator plug-in {path}"
    prior = cfg.get("prior")
    if prior is None:
        return None
    if not isinstance(prior, dict):
        raise ArtifactError(f"{what}: field 'prior' must be an object with 'mean' and/or 'cov'")
    unknown = set(prior) - {"mean", "cov", "mean_sha256", "cov_sha256"}
    if unknown:
        raise ArtifactError(f"{what}: prior has unknown keys {sorted(unknown)} (valid: mean, "
                            "cov, mean_sha256, cov_sha256)")
    mean = _prior_array(prior, "mean", path, what)
    cov = _prior_array(prior, "cov", path, what)
    if mean is None and cov is None:
        return None
    try:
        return LatentSpace(DEFAULT_SPACE, latent_size, mean=mean, cov=cov)
    except ValueError as exc:
        raise ArtifactError(f"{what}: prior {exc}") from exc


def load_plugin(path: Path, device: torch.device, max_batch: int = 256) -> FaceGenerator:
    """Load the generator a plug-in JSON file describes (see the module docstring)."""
    path = Path(path)
    cfg = read_json_object(path, "generator plug-in")
    what = f"generator plug-in {path}"
    fmt = _field(cfg, "format", str, path)
    if fmt not in FORMATS:
        raise ArtifactError(f"{what}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    file = path.parent / _field(cfg, "file", str, path)
    if not file.is_file():
        raise ArtifactError(f"{what}: weights file {file} is missing")
    sha = _sha256_field(cfg, what)
    verify_file(file, sha, what)
    latent_size = _field(cfg, "latent_size", int, path)
    resolution = _field(cfg, "resolution", int, path)
    prior = plugin_prior(cfg, path, latent_size)
    lo, hi = cfg.get("value_range", [-1.0, 1.0])
    module: nn.Module
    try:
        if fmt == "torchscript":
            module = torch.jit.load(str(file), map_location="cpu")
        elif fmt == "torch-export":
            module = _ExportedModule(torch.export.load(str(file)))
        else:
            mod_name, _, cls_name = _field(cfg, "module", str, path).partition(":")
            cls = getattr(importlib.import_module(mod_name), cls_name)
            module = cls(**cfg.get("kwargs", {}))
            state = load_state_dict(file, cfg.get("state_dict_key"), what)
            load_into(module, state, what, file)
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"{what}: cannot load {fmt} file {file}: {exc}") from exc
    gen = FaceGenerator(
        module=module, name=str(cfg.get("name", path.stem)), latent_size=latent_size,
        resolution=resolution, value_range=(float(lo), float(hi)),
        sha256=sha, device=device, max_batch=max_batch,
        spatial_latent=bool(cfg.get("spatial_latent", False)),
        metadata={"source": str(path), "format": fmt}, prior=prior,
    )
    _check_output(gen, what)
    return gen


def _check_output(gen: FaceGenerator, what: str) -> None:
    """Render one latent and check the declared resolution, so mismatches fail at load."""
    z = torch.zeros((1, gen.latent_size))
    try:
        out = gen.render_tensor(z)
    except Exception as exc:
        raise ArtifactError(
            f"{what}: the module failed on a latent of size {gen.latent_size}: {exc}"
        ) from exc
    expected = (1, 3, gen.resolution, gen.resolution)
    if tuple(out.shape) != expected:
        raise ArtifactError(
            f"{what}: the module returned shape {tuple(out.shape)}, expected {expected}"
        )
