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
