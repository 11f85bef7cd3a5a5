"""Registry of realism critics (like the encoder registry): discriminators trained by
``tlgan critic train`` (kind ``critic-weights``) and heads taught on faces marked by eye by
``tlgan critic teach`` (kind ``taught-critic``).

A critic is tied to one generator: its ``config.json`` records the generator's sha256, and
loading it for any other generator is refused. With no critic named, the default one
registered for the generator in use is loaded; a generator with none registered has no
critic (faces are then only sampled ``raw``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tlgan import tied_weights
from tlgan.critic.critic import Critic
from tlgan.critic.critic_net import KIND as DISCRIMINATOR_KIND
from tlgan.critic.critic_net import WEIGHTS_FILE
from tlgan.critic.taught import HEAD_FILE, TaughtCritic
from tlgan.tied_weights import TiedWeights, check_pinned, resolve_tied
from tlgan_base.artifact import load_config

if TYPE_CHECKING:
    from tlgan.generators.base import FaceGenerator

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: a registered critic: ``location`` is its weights folder relative to
#: ``tlgan/critic/weights/``; ``sha256`` that of its ``critic.safetensors`` (a
#: discriminator) or ``head.safetensors`` (a taught head)
CriticWeights = TiedWeights

#: the default critic of celeba-dcgan64: the head taught on marked faces (its cv AUC on the
#: marks is 0.82 where the discriminator's ranks the bench's broken faces at chance,
#: docs/models.md)
DEFAULT = "celeba-dcgan64-taught"
#: the discriminator critic (kept registered, not the default)
DISCRIMINATOR = "celeba-dcgan64-critic"

CRITICS: dict[str, CriticWeights] = {
    "celeba-dcgan64-critic": CriticWeights(
        name="celeba-dcgan64-critic",
        location="celeba-dcgan64-critic",
        sha256="c82c8e9397619bc1ac2649c370c40962df03de7e6c1722fa0dc33ac87162aef9",
        generator="celeba-dcgan64",
        generator_sha256="e9ebbb42e04fcec37fe0b0faa094d6f1f61b10ef6e5ddfae4b4b792b8ff36902",
        source=("`tlgan critic train --data celeba-subset --steps 5000 --max-minutes 28` on one "
                "CPU thread (25 min): the subset's partition 0 against the generator's fresh "
                "faces, best validation loss on partition 1 (step 4600); CelebA is "
                "non-commercial research only"),
        description=("realism logit of celeba-dcgan64's 64 px faces (spectral-norm DCGAN "
                     "discriminator, width 32, 0.69 M parameters; validation AUC 0.886 real "
                     "vs generated)"),
        weights_dir=WEIGHTS_DIR, default=False,
    ),
    "celeba-dcgan64-taught": CriticWeights(
        name="celeba-dcgan64-taught",
        location="celeba-dcgan64-taught",
        sha256="97ae827194699302879f095b736192bb7dfc8f9190a5b294c27e013bf5ccb703",
        generator="celeba-dcgan64",
        generator_sha256="e9ebbb42e04fcec37fe0b0faa094d6f1f61b10ef6e5ddfae4b4b792b8ff36902",
        source=("`tlgan critic teach --marks tlgan/critic/marks/celeba-dcgan64-broken-marks.json"
                "` (320 faces of seeds 2001-2320 marked by eye, 99 broken; layer and C chosen "
                "by seeded 5-fold cross-validation on the marks)"),
        description=("minus the logit of broken of a logistic head on the per-channel mean "
                     "and std of the generator's ReLU 1 output (512 features, C=0.1); cv AUC "
                     "0.817 on the marks (95% bootstrap 0.760-0.867)"),
        weights_dir=WEIGHTS_DIR, default=True,
    ),
}


def registered_for(generator: FaceGenerator) -> CriticWeights | None:
    """The registered critic trained for this generator (by sha256), if any."""
    return tied_weights.registered_for(CRITICS, generator.sha256)


def load_critic(spec: str | os.PathLike[str] | None, generator: FaceGenerator
                ) -> Critic | TaughtCritic | None:
    """Load a realism critic for ``generator``.

    Args:
        spec: None (the default critic registered for this generator; None when there is
            none), a registered name, or a folder written by ``tlgan critic train`` or
            ``tlgan critic teach`` (told apart by the kind in its config.json).
        generator: the generator it must have been trained for (the critic runs on its
            device).

    Raises:
        ArtifactError: the weights are missing or corrupt, do not match the registry's
            sha256, or were trained for another generator.
        ValueError: ``spec`` names nothing we know.
    """
    found = resolve_tied("critic", CRITICS, spec, generator.sha256)
    if found is None:
        return None
    entry, folder, name = found
    critic: Critic | TaughtCritic
    if load_config(folder, verify=False).get("kind") == DISCRIMINATOR_KIND:
        critic = Critic.from_folder(folder, generator.sha256, device=generator.device,
                                    name=name, generator=generator)
        check_pinned("critic", entry, folder / WEIGHTS_FILE, critic.sha256)
    else:  # a taught head, or the error naming the kind found
        critic = TaughtCritic.from_folder(folder, generator, name=name)
        check_pinned("critic", entry, folder / HEAD_FILE, critic.sha256)
    return critic
