"""tlgan_base.domain_errors: cutting the user values that error messages echo."""

from __future__ import annotations

from tlgan_base.domain_errors import ECHO_LIMIT, clip, shown


def test_clip_and_shown_cut_long_values_with_an_ellipsis() -> None:
    assert clip("short") == "short" and shown("Smiling") == "'Smiling'"
    assert shown(3.5) == "3.5"
    long = "x" * 900_000
    assert clip(long) == "x" * (ECHO_LIMIT - 1) + "…" and len(clip(long)) == ECHO_LIMIT
    assert shown(long) == "'" + "x" * (ECHO_LIMIT - 3) + "…'" and len(shown(long)) == ECHO_LIMIT
    assert len(shown(list(range(100_000)))) == ECHO_LIMIT
