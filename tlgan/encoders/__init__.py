"""Photo encoders: a face photo -> a latent of the generator, refined by optimization.

``model`` (the network), ``losses`` (the inversion loss), ``refine`` (Adam on z),
``photo`` (:class:`~tlgan.encoders.photo_encoder.PhotoEncoder`: all of it bound to a generator),
``registry`` (registered weights), ``training`` (``tlgan encoder train``).
This module itself imports nothing heavy.
"""

#: the default refinement budget of ``tlgan encode`` and POST /encode (docs/evidence.md's
#: table says what each budget buys and costs on 2 CPU cores)
DEFAULT_STEPS = 25
#: refinement's starting points (2 and 4 bought nothing at 25 steps: docs/evidence.md)
DEFAULT_STARTS = 1

__all__ = ["DEFAULT_STARTS", "DEFAULT_STEPS"]
