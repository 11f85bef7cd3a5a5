"""Build the service's :class:`~tlgan.pipeline.Pipeline` from its settings.

Called from the app's lifespan (never at import). Loading errors are ``ArtifactError``
(missing/corrupt/mismatched artifact) or ``ValueError`` (a setting names nothing we know);
both carry one readable sentence that ``tlgan serve`` prints before exiting non-zero.
"""

from __future__ import annotations

from api.settings import Settings
from tlgan.assembly import load_pipeline
from tlgan.pipeline import Pipeline
from tlgan.pipeline.ranking import resolve_quality


def build_pipeline(settings: Settings) -> Pipeline:
    """Load the generator, extractor, axis bundle, photo encoder, realism critic and upscaler
    named by ``settings``.

    ``settings.extractor`` / ``settings.bundle`` equal to ``"none"`` skip that model (the
    service then cannot label faces / move along axes).

    Raises:
        ArtifactError: an artifact is missing, corrupt or does not fit the others.
        ValueError: a setting names no known model, the device is unavailable, or
            ``quality`` is ``ranked`` or ``refined`` with no critic loaded.
    """
    pipeline = load_pipeline(generator=settings.generator, extractor=settings.extractor,
                             bundle=settings.bundle, device=settings.device,
                             max_batch=settings.max_batch, encoder=settings.encoder,
                             critic=settings.critic, upscaler=settings.upscaler)
    resolve_quality(settings.quality, pipeline.critic, pipeline.generator.name)
    # every forward pass holds at most max_batch faces, a job's own passes included
    pipeline.pass_faces = settings.max_batch
    return pipeline
