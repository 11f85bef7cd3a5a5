"""The ground floor: plumbing every layer may use (``axes``, ``feature_extractor``, ``tlgan``,
``api``). It imports none of them."""
