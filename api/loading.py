"""Build the service's :class:`~tlgan.pipeline.Pipeline` from its settings.

Called from the app's lifespan (never at import). Loading errors are ``ArtifactError``
(missing/corrupt/mismatched artifact) or ``ValueError`` (a setting names nothing we know);
both carry one readable sentence that ``tlgan serve`` prints before exiting non-zero.
"""

from __future__ import annotations

from typing import Any

from api.settings import Settings
from tlgan.errors import ConfigError
from tlgan.pipeline import Pipeline


def build_pipeline(settings: Settings) -> Pipeline:
    """Load the generator, extractor and axis bundle named by ``settings``.

    ``settings.extractor`` / ``settings.bundle`` equal to ``"none"`` skip that model (the
    service then cannot label faces / move along axes).

    Raises:
        ArtifactError: an artifact is missing, corrupt or does not fit the others.
        ValueError: a setting names no known model, or the device is unavailable.
    """
    from tlgan.devices import resolve_device
    from tlgan.generators import load_generator

    device = resolve_device(settings.device)
    generator = load_generator(settings.generator, device, max_batch=settings.max_batch)

    extractor: Any = None
    if settings.wants("extractor"):
        try:
            from feature_extractor.registry import load_extractor
        except ImportError as exc:
            raise ConfigError(
                f"extractor: cannot import the feature extractor package ({exc}); "
                "set TLGAN_EXTRACTOR=none to serve without labelling"
            ) from None
        extractor = load_extractor(settings.extractor, device)

    bundle: Any = None
    if settings.wants("bundle"):
        from tlgan.bundles import load_bundle

        # None: the bundle shipped for this generator; refuses a bundle fitted for another
        # generator, latent size or extractor.
        bundle = load_bundle(settings.bundle, generator=generator.name,
                             latent_size=generator.latent_size,
                             extractor=getattr(extractor, "name", None),
                             generator_sha256=generator.sha256,
                             extractor_sha256=getattr(extractor, "sha256", None))

    # The pipeline takes each axis' calibration (logit change per unit) from the bundle.
    return Pipeline(generator=generator, extractor=extractor, bundle=bundle)
