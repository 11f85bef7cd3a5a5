"""Realism critics: a small discriminator trained against one frozen generator, scoring how
realistic its faces look (higher = more realistic).

``critic_net`` (the network and its config), ``critic`` (:class:`~tlgan.critic.critic.Critic`,
a ``tlgan_base.protocols.RealismScorer``), ``critic_weights`` (the registry),
``critic_training`` (``tlgan critic train``). This module itself imports nothing heavy.
"""

#: the augmentation policy applied alike to real and generated faces in training
DEFAULT_AUGMENT = "translation,color,cutout"

__all__ = ["DEFAULT_AUGMENT"]
