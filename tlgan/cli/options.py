"""Options shared by several commands."""

from __future__ import annotations

import click

device_option = click.option(
    "--device", default="cpu", show_default=True,
    help="Torch device: cpu, cuda, cuda:N or auto.",
)
generator_option = click.option(
    "--generator", default=None, show_default="registry DEFAULT",
    help="Registered generator name, weights folder, or plug-in .json file.",
)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``count(1, "face")`` -> ``"1 face"``, ``count(120000, "face")`` -> ``"120,000 faces"``."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
