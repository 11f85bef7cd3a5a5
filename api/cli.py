"""``tlgan serve``: the command, its options derived from :class:`api.settings.Settings`.

Every setting but the API key is an option (``max_queue_wait`` -> ``--max-queue-wait``,
booleans as ``--x/--no-x``, ``cors_origins`` as a repeatable ``--cors-origin``), typed and
ranged from the field's own constraints, with the field's description as help and its
default and environment variable shown. A new setting is an option with no edit here.

:func:`main` is the ``tlgan`` console script: the library's command group
(:data:`tlgan.cli.main.cli`) plus ``serve``, composed here so that the ``tlgan`` package never
imports ``api`` (``python -m api.cli`` runs it too).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import annotated_types
import click
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from api.settings import Settings
from tlgan.cli.main import cli
from tlgan_base.cli_errors import fail

#: settings that are never options (the API key is read from TLGAN_API_KEY only)
ENV_ONLY = frozenset({"api_key"})


def _default(name: str, field: FieldInfo) -> str:
    """show_default text: the setting's default and its environment variable."""
    value = field.get_default(call_default_factory=True)
    if name in ("generator", "extractor", "bundle"):
        shown = "registry default"
    elif value in ([], None):
        shown = "none"
    elif isinstance(value, bool):
        shown = str(value).lower()
    else:
        shown = str(value)
    return f"{shown}; env TLGAN_{name.upper()}"


def _bounds(field: FieldInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            out["min"] = meta.ge
        elif isinstance(meta, annotated_types.Gt):
            out["min"], out["min_open"] = meta.gt, True
        elif isinstance(meta, annotated_types.Le):
            out["max"] = meta.le
        elif isinstance(meta, annotated_types.Lt):
            out["max"], out["max_open"] = meta.lt, True
    return out


#: a setting's second flag, shared with the library commands (every model command takes --threads)
ALIASES = {"torch_threads": "--threads"}


def _option(name: str, field: FieldInfo) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option of one setting."""
    kind = field.annotation
    flag = "--" + name.replace("_", "-")
    if name in ALIASES:
        flag = f"{flag} {ALIASES[name]}"
    common: dict[str, Any] = {"default": None, "help": field.description,
                              "show_default": _default(name, field)}
    if kind is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", name, **common)
    if typing.get_origin(kind) is typing.Literal:
        return click.option(flag, name, type=click.Choice(typing.get_args(kind)), **common)
    if kind is int:
        return click.option(*flag.split(), name, type=click.IntRange(**_bounds(field)), **common)
    if kind is float:
        return click.option(flag, name, type=click.FloatRange(**_bounds(field)), **common)
    if typing.get_origin(kind) is list or name == "cors_origins":
        return click.option(flag.rstrip("s"), name, multiple=True,
                            help=f"{field.description} (repeatable)",
                            show_default=_default(name, field))
    return click.option(flag, name, type=str, **common)


def settings_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with one option per setting (see the module docstring)."""
    for name, field in reversed(list(Settings.model_fields.items())):
        if name in ENV_ONLY or field.annotation in (SecretStr, SecretStr | None):
            continue
        fn = _option(name, field)(fn)
    return fn


@click.command()
@settings_options
def serve(**options: Any) -> None:
    """Serve the REST API (FastAPI + uvicorn) on the default models.

    Every option overrides its TLGAN_* environment variable; the API key is read from
    TLGAN_API_KEY only (never from the command line). The port is checked first and the
    models load before it accepts connections; if either is unusable, the command prints one
    line and exits with code 2. On SIGTERM (or Ctrl-C) /readyz turns 503, in-flight requests
    finish (up to --graceful-timeout seconds; new ones get 503 + Retry-After), the render
    queue drains and the command exits 0. API docs: http://HOST:PORT/docs; metrics:
    http://HOST:PORT/metrics.

    \b
    Examples:
      tlgan serve
      tlgan serve --host 0.0.0.0 --port 8080 --device cuda
      TLGAN_API_KEY=secret tlgan serve --cors-origin https://example.org
      tlgan serve --extractor none --bundle none      # generator only
      curl -s localhost:8000/generate -H 'Content-Type: application/json' \\
           -d '{"seed": 1}' -H 'Accept: image/png' -o face.png
    """
    # lazy, as in tlgan/cli: `tlgan --help` must not import the server and the app
    from api.server import StartError, run
    from api.settings import load_settings

    if "cors_origins" in options:
        options["cors_origins"] = list(options["cors_origins"]) or None
    settings = load_settings(**options)
    try:
        code = run(settings)
    except StartError as exc:
        fail(exc)
    raise SystemExit(code)


def main() -> None:
    """The ``tlgan`` command: the library's group plus ``serve``."""
    cli.add_command(serve)
    cli(prog_name="tlgan")


if __name__ == "__main__":  # pragma: no cover
    main()
