"""Everything registered, for ``tlgan info`` and the API's listings."""

from __future__ import annotations

from typing import Any


def describe_all() -> dict[str, list[dict[str, Any]]]:
    """Registered generators, extractors, photo encoders and axis bundles, as JSON-friendly
    dicts."""
    from tlgan.encoders.registry import ENCODERS
    from tlgan.generators.registry import GENERATORS

    out: dict[str, list[dict[str, Any]]] = {
        "generators": [g.describe() for g in GENERATORS.values()],
        "encoders": [e.describe() for e in ENCODERS.values()],
    }
    try:
        from feature_extractor.registry import DEFAULT as EXTRACTOR_DEFAULT
        from feature_extractor.registry import EXTRACTORS
    except ImportError:
        out["extractors"] = []
    else:
        out["extractors"] = [
            {"name": name, "default": name == EXTRACTOR_DEFAULT, "folder": e.folder,
             **{k: v for k, v in vars(e).items()
                if k != "location" and isinstance(v, (str, int, float))}}
            for name, e in EXTRACTORS.items()
        ]
    try:
        from tlgan.bundles import describe_bundles
    except ImportError:
        out["bundles"] = []
    else:
        out["bundles"] = describe_bundles()
    return out
