"""The ``tlgan`` command line: a thin wrapper over library functions.

Domain errors (``ValueError``, ``ArtifactError``) become one readable line on stderr and exit
code 2; no traceback reaches the user.
"""

from __future__ import annotations

import click

from tlgan_base.cli_errors import ErrorGroup

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=ErrorGroup, context_settings=CONTEXT)
@click.version_option(package_name="tlgan")
def cli() -> None:
    """tlgan: transparent latent-space control for face generators.

    \b
    Examples:
      tlgan info
      tlgan generate --seeds 1-8 --out faces/
      tlgan encode photo.jpg --out encoded/
      tlgan edit encoded/photo.json --move Smiling=2 --lock Male --out edited/
      tlgan photo edit me.jpg --move Smiling=1.5 --out me-smiling.jpg
      tlgan serve --port 8000
    """


def _register() -> None:
    """Add the library's commands (``serve`` is added by :func:`api.cli.main`)."""
    from tlgan.cli.axes import axes
    from tlgan.cli.critic import critic
    from tlgan.cli.encode import edit, encode
    from tlgan.cli.encoder import encoder
    from tlgan.cli.extractor import extractor
    from tlgan.cli.generate import generate, info
    from tlgan.cli.generator import generator
    from tlgan.cli.photo import photo
    from tlgan.cli.sr import sr

    for command in (generate, encode, edit, photo, info, extractor, generator, encoder,
                    critic, axes, sr):
        cli.add_command(command)


_register()


if __name__ == "__main__":  # pragma: no cover
    cli(prog_name="tlgan")
