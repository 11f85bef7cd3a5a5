"""Everything registered, for ``tlgan info`` and the API's listings."""

from __future__ import annotations

from typing import Any

from feature_extractor.extractor_weights import DEFAULT as EXTRACTOR_DEFAULT
from feature_extractor.extractor_weights import EXTRACTORS
from tlgan.axis_work.bundle_store import describe_bundles
from tlgan.critic.critic_weights import CRITICS
from tlgan.encoders.encoder_weights import ENCODERS
from tlgan.generators.generator_weights import GENERATORS
from tlgan.upscale.sr_weights import UPSCALERS


def describe_all() -> dict[str, list[dict[str, Any]]]:
    """Registered generators, extractors, photo encoders, realism critics, upscalers and axis
    bundles, as JSON-friendly dicts."""
    return {
        "generators": [g.describe() for g in GENERATORS.values()],
        "encoders": [e.describe() for e in ENCODERS.values()],
        "critics": [c.describe() for c in CRITICS.values()],
        "extractors": [
            {"name": name, "default": name == EXTRACTOR_DEFAULT, "folder": e.folder,
             **{k: v for k, v in vars(e).items()
                if k != "location" and isinstance(v, (str, int, float))}}
            for name, e in EXTRACTORS.items()
        ],
        "upscalers": [u.describe() for u in UPSCALERS.values()],
        "bundles": describe_bundles(),
    }
