"""Assemble the models in one place: generator + extractor + axis bundle -> a Pipeline.

Used by the API's lifespan, the CLI and the bench scripts, so every caller loads and checks
the models the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from feature_extractor.extractor_weights import load_extractor
from tlgan.axis_work.bundle_store import load_bundle
from tlgan.critic.critic_weights import load_critic
from tlgan.encoders.encoder_weights import load_encoder
from tlgan.generators import load_generator
from tlgan.pipeline import Pipeline
from tlgan.upscale import MIN_SIZE
from tlgan.upscale.sr_weights import load_upscaler
from tlgan.upscale.upscaler import Upscaler
from tlgan_base.artifact import ArtifactError
from tlgan_base.devices import resolve_device

#: the value that switches the extractor or the bundle off
NONE = "none"


def _off(value: str | Path | None) -> bool:
    return isinstance(value, str) and value.lower() == NONE


@contextmanager
def _naming(argument: str) -> Iterator[None]:
    """An error loading one model starts with the argument that chose it (``bundle: artifact
    folder /x does not exist``), so the user knows which setting to fix."""
    try:
        yield
    except (ArtifactError, ValueError) as exc:
        if (len(exc.args) == 1 and isinstance(exc.args[0], str)
                and not exc.args[0].startswith(f"{argument}:")):
            exc.args = (f"{argument}: {exc.args[0]}",)
        raise


def load_pipeline(generator: str | None = None, extractor: str | None = None,
                  bundle: str | Path | None = None, device: torch.device | str = "cpu",
                  max_batch: int = 256, encoder: str | Path | None = None,
                  critic: str | Path | None = None,
                  upscaler: str | Path | None = None) -> Pipeline:
    """Load a generator, an extractor, an axis bundle, a photo encoder, a realism critic and
    a face upscaler into a :class:`Pipeline`.

    Args:
        generator: registered name, weights folder or plug-in ``.json``; None: the DEFAULT.
        extractor: registered name or weights folder; None: the DEFAULT; ``"none"``: none
            (the pipeline then cannot label faces).
        bundle: axis-bundle folder; None: the bundle shipped for the generator; ``"none"``:
            none (no axes).
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``.
        max_batch: the largest batch the generator sees at once.
        encoder: photo encoder (registered name or weights folder); None: the one
            registered for the generator, if any; ``"none"``: none (no photo encoding).
        critic: realism critic (registered name or weights folder); None: the one
            registered for the generator, if any; ``"none"``: none (faces are only sampled
            ``raw``).
        upscaler: face upscaler (registered name or weights folder) for faces asked for at
            128 px or more; None: the registry's default, if any; ``"none"``: none.

    Raises:
        ArtifactError: an artifact is missing, corrupt or does not fit the others (a bundle
            fitted for another generator, latent size or extractor is refused).
        ValueError: an argument names no known model, or the device is unavailable.
        Either message starts with the argument it concerns (``bundle: ...``).
    """
    with _naming("device"):
        dev = resolve_device(device)
    with _naming("generator"):
        gen = load_generator(generator, dev, max_batch=max_batch)
    ext: Any = None
    if not _off(extractor):
        with _naming("extractor"):
            ext = load_extractor(extractor, dev)
    axes: Any = None
    if not _off(bundle):
        with _naming("bundle"):
            axes = load_bundle(bundle, generator=gen.name, latent_size=gen.latent_size,
                               extractor=getattr(ext, "name", None),
                               generator_sha256=gen.sha256,
                               extractor_sha256=getattr(ext, "sha256", None),
                               spaces=gen.space_sizes())
    enc = None
    if not _off(encoder):
        with _naming("encoder"):
            enc = load_encoder(encoder, gen)
    judge = None
    if not _off(critic):
        with _naming("critic"):
            judge = load_critic(critic, gen)
    up = None
    if not _off(upscaler):
        with _naming("upscaler"):
            up = load_upscaler(upscaler, dev)
    # The pipeline takes each axis' calibration (logit change per unit) from the bundle.
    return Pipeline(generator=gen, extractor=ext, bundle=axes, encoder=enc, critic=judge,
                    upscaler=up)


def load_upscaler_for(upscaler: str | Path | None, size: int | None,
                      device: torch.device | str = "cpu") -> Upscaler | None:
    """The upscaler faces written at ``size`` px pass through (the CLI's ``--upscaler``):
    None when ``size`` is None or under :data:`~tlgan.upscale.MIN_SIZE` (nothing is loaded)
    or ``upscaler`` is ``"none"``; else as :func:`load_pipeline` loads it.

    Raises:
        ArtifactError, ValueError: as :func:`load_pipeline`, starting with ``upscaler:``.
    """
    if size is None or size < MIN_SIZE or _off(upscaler):
        return None
    with _naming("upscaler"):
        return load_upscaler(upscaler, resolve_device(device))
