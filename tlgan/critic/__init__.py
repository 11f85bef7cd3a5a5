"""Realism critics of one generator's faces (higher = more realistic): a head taught on
faces marked by eye, reading the generator's own features (the default), or a small
discriminator trained against the frozen generator.

``taught`` (:class:`~tlgan.critic.taught.TaughtCritic` and ``tlgan critic teach``),
``critic_net`` (the discriminator and its config), ``critic``
(:class:`~tlgan.critic.critic.Critic`, a ``tlgan_base.protocols.RealismScorer``),
``critic_weights`` (the registry), ``critic_training`` (``tlgan critic train``). Both critics
are ``tlgan_base.protocols.LatentRealismScorer``. This module itself imports nothing heavy.
"""

#: the augmentation policy applied alike to real and generated faces in training
DEFAULT_AUGMENT = "translation,color,cutout"

#: sampling qualities: each seed's own face, the critic's best of several candidates, or
#: the seed's latent moved a bounded way up the critic's score, orthogonal to the axes
RAW = "raw"
RANKED = "ranked"
REFINED = "refined"
QUALITIES = (RAW, RANKED, REFINED)
#: refined sampling: normalized-gradient steps and the farthest the latent may move (a z of
#: the 100-d latent has norm ~10); each step is 1.5 * REFINE_RADIUS / REFINE_STEPS long.
#: Radius 4 over 6 on bench/quality.py: as many broken faces by eye (14 of 64 both), FD 5.19
#: against 5.74 (raw 5.08)
REFINE_STEPS = 8
REFINE_RADIUS = 4.0
#: the sampling of a request that names none, when a critic is loaded (without one: raw).
#: Raw on bench/quality.py's evidence (docs/models.md): ranking by the discriminator broke
#: more of the 64 grid faces at every K (its ROC-AUC on the by-eye labels is 0.50); ranking
#: by the taught critic (0.81) broke about as many at K = 2 and 4 (19, 17 against 18) and
#: 13 at K = 8, but raised the Fréchet distance from 5.08 to 8.14 at 3x the time; refined
#: sampling (radius 4) broke fewer (14 against raw's 21 by eye in one count, FD 5.19 against
#: 5.08) but one /generate face took 5-10x raw's time (the goal: within 2x)
DEFAULT_QUALITY = RAW
#: candidates per seed of ``ranked`` sampling when neither a request nor the service names
#: a number (chosen on bench/quality.py's figures: docs/models.md), and its bounds
DEFAULT_CANDIDATES = 2
MIN_CANDIDATES = 2
MAX_CANDIDATES = 16

__all__ = ["DEFAULT_AUGMENT", "DEFAULT_CANDIDATES", "DEFAULT_QUALITY", "MAX_CANDIDATES",
           "MIN_CANDIDATES", "QUALITIES", "RANKED", "RAW", "REFINED", "REFINE_RADIUS",
           "REFINE_STEPS"]
