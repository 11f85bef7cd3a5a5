"""Shared helpers for bench scripts: medians of repeated timings, a table printer and the
real server for the benches that measure it over HTTP."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from tlgan.server_process import ServerNotReady, ServerProcess, running_server


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain aligned table."""
    cells = [[str(h) for h in headers]] + [[f"{c:.1f}" if isinstance(c, float) else str(c)
                                           for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for j, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


@contextmanager
def bench_server(bench: str, *options: str, **kwargs: Any) -> Iterator[ServerProcess]:
    """:func:`tlgan.server_process.running_server` (``kwargs`` go to it) for a bench: a
    server that does not start ends the bench with a message naming ``bench`` and the end of
    the server's log."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_server(*options, **kwargs))
        except ServerNotReady as exc:
            raise SystemExit(f"{bench}: the server did not start: {exc}") from None
        yield server
