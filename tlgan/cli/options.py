"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

device_option = click.option(
    "--device", default="cpu", show_default=True,
    help="Torch device: cpu, cuda, cuda:N or auto.",
)
generator_option = click.option(
    "--generator", default=None, show_default="registry DEFAULT",
    help="Registered generator name, weights folder, or plug-in .json file.",
)
upscaler_option = click.option(
    "--upscaler", default=None, show_default="registry DEFAULT",
    help="Face upscaler (registered name or weights folder) faces pass through when --size "
         "is 128 or more, before the Lanczos resize; 'none': Lanczos alone.",
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


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """One decorator applying ``decorators`` so that their options show in the order given."""
    def apply(fn: F) -> F:
        for deco in reversed(decorators):
            fn = deco(fn)
        return fn
    return apply


#: ``--data`` and ``--out`` of the commands that train on a CelebA-format directory's
#: partitions 0 (training) and 1 (early stopping)
partition_data_options = _stack(
    click.option("--data", required=True, type=click.Path(file_okay=False, path_type=Path),
                 help="A CelebA-format directory: partition 0 trains, partition 1 stops early."),
    click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
                 help="Weights folder to write (replaced atomically at the end)."),
)


def early_stop_options(val_images: int, eval_every: int = 250,
                       val_help: str = "Partition-1 crops scored per evaluation.",
                       ) -> Callable[[F], F]:
    """``--eval-every`` (default ``eval_every``), ``--patience``, ``--val-images`` (default
    ``val_images``, help ``val_help``), ``--max-train-images`` and ``--max-minutes`` of those
    commands."""
    return _stack(
        click.option("--eval-every", type=int, default=eval_every, show_default=True,
                     help="Score the model on partition 1 every N steps."),
        click.option("--patience", type=int, default=6, show_default=True,
                     help="Stop after N evaluations without improvement."),
        click.option("--val-images", type=int, default=val_images, show_default=True,
                     help=val_help),
        click.option("--max-train-images", type=int, default=50000, show_default=True,
                     help="Most partition-0 crops decoded (a seeded choice from a full "
                          "CelebA)."),
        click.option("--max-minutes", type=float, default=None, show_default="none",
                     help="Stop after this many minutes, checkpoint and export the best "
                          "snapshot."),
    )


#: ``--work``, ``--resume`` and ``--quiet`` of a resumable training command
run_folder_options = _stack(
    click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=None,
                 show_default="OUT.work",
                 help="Folder for checkpoints, the image cache and logs."),
    click.option("--resume", is_flag=True, help="Continue from the work folder's checkpoint."),
    click.option("--quiet", is_flag=True, help="No progress bar."),
)
