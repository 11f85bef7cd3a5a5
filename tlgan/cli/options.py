"""Options shared by several commands."""

from __future__ import annotations

from typing import Any

import click

device_option = click.option(
    "--device", default="cpu", show_default=True,
    help="Torch device: cpu, cuda, cuda:N or auto.",
)
generator_option = click.option(
    "--generator", default=None, show_default="registry DEFAULT",
    help="Registered generator name, weights folder, or plug-in .json file.",
)

#: the setting ``tlgan serve`` reads its thread count from (0 there means auto)
THREADS_ENV = "TLGAN_TORCH_THREADS"


def _set_threads(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Parse ``--threads`` (N >= 1 or auto; from TLGAN_TORCH_THREADS, 0 is auto too, as for
    ``tlgan serve``) and set torch's threads for this process, the command's own."""
    from click.core import ParameterSource

    from tlgan_base.devices import resolve_threads, set_threads

    text = str(value).strip().lower()
    from_env = ctx.get_parameter_source(param.name or "") is ParameterSource.ENVIRONMENT
    threads: int | None = None
    if text != "auto" and not (from_env and text == "0"):
        try:
            threads = int(text)
        except ValueError:
            threads = 0
        if threads < 1:
            where = THREADS_ENV if from_env else "--threads"
            raise ValueError(f"{where}: {value!r} is not a thread count: give a whole number "
                             ">= 1, or auto (one per CPU core minus one)")
    set_threads(resolve_threads(threads))


threads_option = click.option(
    "--threads", metavar="N|auto", default="auto", envvar=THREADS_ENV, show_envvar=True,
    show_default="auto: CPU cores - 1, at least 1", expose_value=False, callback=_set_threads,
    help="Torch CPU threads for the models, chosen as `tlgan serve` chooses them. Torch's own "
         "default, every core, is several times slower on a machine busy with other work.",
)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``count(1, "face")`` -> ``"1 face"``, ``count(120000, "face")`` -> ``"120,000 faces"``."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
