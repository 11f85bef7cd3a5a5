"""The one way a command line reports a bad input: one line on stderr, exit code 2.

``tlgan``'s group (:class:`ErrorGroup`), its sub-commands and ``tlgan serve`` all use it, so
no traceback reaches the user and every failure reads the same (``Error: <one line>``).
"""

from __future__ import annotations

from typing import Any, NoReturn

import click

from tlgan_base.artifact import ArtifactError

__all__ = ["DOMAIN_ERRORS", "GROUP_ERRORS", "ErrorGroup", "InputError", "fail"]

#: what a command line reports as a bad input rather than a crash
DOMAIN_ERRORS = (ValueError, ArtifactError)
#: what the ``tlgan`` group reports so (a sub-command may say more about an OSError first)
GROUP_ERRORS = (ValueError, ArtifactError, FileNotFoundError, PermissionError)


class InputError(click.ClickException):
    """A bad input (missing folder, unknown weights, malformed file): one line, exit code 2."""

    exit_code = 2


def fail(exc: BaseException | str) -> NoReturn:
    """Raise :class:`InputError` with ``exc``'s message folded onto one line."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, BaseException):
        raise InputError(msg) from exc
    raise InputError(msg)


class ErrorGroup(click.Group):
    """A click group that turns domain errors (and missing or unreadable files) into one line
    and exit code 2, and Ctrl-C into ``Interrupted.`` and exit code 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GROUP_ERRORS as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
