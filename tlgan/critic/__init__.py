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
#: candidates per seed of ``ranked`` sampling when neither a request nor the service names
#: a number (chosen on bench/quality.py's figures: docs/models.md), and its bounds
DEFAULT_CANDIDATES = 4
MIN_CANDIDATES = 2
MAX_CANDIDATES = 16

__all__ = ["DEFAULT_AUGMENT", "DEFAULT_CANDIDATES", "MAX_CANDIDATES", "MIN_CANDIDATES",
           "QUALITIES", "RANKED", "RAW"]
