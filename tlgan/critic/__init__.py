"""Realism critics: a small discriminator trained against one frozen generator, scoring how
realistic its faces look (higher = more realistic).

``critic_net`` (the network and its config), ``critic`` (:class:`~tlgan.critic.critic.Critic`,
a ``tlgan_base.protocols.RealismScorer``), ``critic_weights`` (the registry),
``critic_training`` (``tlgan critic train``). This module itself imports nothing heavy.
"""

#: the augmentation policy applied alike to real and generated faces in training
DEFAULT_AUGMENT = "translation,color,cutout"

#: sampling qualities: each seed's own face, or the critic's best of several candidates
RAW = "raw"
RANKED = "ranked"
QUALITIES = (RAW, RANKED)
#: the sampling of a request that names none, when a critic is loaded (without one: raw).
#: Raw on bench/quality.py's evidence (docs/models.md): the shipped critic does not tell
#: broken faces from fine ones (ROC-AUC 0.50 on the by-eye labels), and ranking by it broke
#: as many or more of the 64 grid faces and raised the Fréchet distance at every K
DEFAULT_QUALITY = RAW
#: candidates per seed of ``ranked`` sampling when neither a request nor the service names
#: a number (chosen on bench/quality.py's figures: docs/models.md), and its bounds
DEFAULT_CANDIDATES = 2
MIN_CANDIDATES = 2
MAX_CANDIDATES = 16

__all__ = ["DEFAULT_AUGMENT", "DEFAULT_CANDIDATES", "DEFAULT_QUALITY", "MAX_CANDIDATES",
           "MIN_CANDIDATES", "QUALITIES", "RANKED", "RAW"]
