"""Progress bars for long work that read well on a terminal *and* in a log file.

On a terminal, :func:`progress_bar` is a plain tqdm bar that redraws in place. When the stream
is not a terminal (a file, a pipe, a CI log) tqdm's in-place redraws become one line per
redraw, so there the bar is redrawn at most every ``log_interval`` seconds, each redraw is
one complete line (postfix and description changes wait for the next redraw), identical
consecutive lines are dropped, and clearing a transient bar writes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

from tqdm import tqdm

__all__ = ["DEFAULT_LOG_INTERVAL", "LineStream", "progress_bar"]

#: seconds between progress lines when the output is not a terminal
DEFAULT_LOG_INTERVAL = 30.0


class LineStream:
    """A text stream that turns tqdm's carriage-return redraws into whole lines.

    Text is buffered until ``\\r``, ``\\n`` or a flush; a finished piece is written as one
    line unless it is blank or equal to the previous line written.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._buf = ""
        self._last: str | None = None

    def write(self, text: str) -> int:
        self._buf += text
        while True:
            cut = min((i for i in (self._buf.find("\r"), self._buf.find("\n")) if i >= 0),
                      default=-1)
            if cut < 0:
                break
            self._emit(self._buf[:cut])
            self._buf = self._buf[cut + 1:]
        return len(text)

    def _emit(self, line: str) -> None:
        line = line.rstrip()
        if not line.strip() or line == self._last:
            return
        self._last = line
        self.stream.write(line + "\n")
        self.stream.flush()

    def flush(self) -> None:
        # tqdm writes "\r<status>" and then flushes: the status is complete at that point
        if self._buf:
            self._emit(self._buf)
            self._buf = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False


class _LogBar(tqdm):
    """A tqdm bar whose postfix and description changes wait for the next timed redraw
    (tqdm redraws on each of them by default, which off a terminal is one line per call)."""

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True,
                    **kwargs: Any) -> None:
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        super().set_postfix_str(s, refresh=False)

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        super().set_description(desc, refresh=False)


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # closed stream
        return False


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None,
                 desc: str = "", unit: str = "it", enabled: bool = True, leave: bool = True,
                 initial: int = 0, stream: IO[str] | None = None,
                 log_interval: float = DEFAULT_LOG_INTERVAL) -> tqdm:
    """A tqdm bar on ``stream`` (default: stderr) that logs sensibly off a terminal.

    Args:
        iterable, total, desc, unit, leave, initial: as for ``tqdm``.
        enabled: ``False`` gives a silent bar (same interface).
        stream: where to write; a non-terminal stream gets at most one line per
            ``log_interval`` seconds, plus the first and the final state.
        log_interval: seconds between lines off a terminal.
    """
    out = sys.stderr if stream is None else stream
    if _is_terminal(out):
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, initial=initial,
                    file=out, disable=not enabled, dynamic_ncols=True)
    return _LogBar(iterable, total=total, desc=desc, unit=unit, leave=leave, initial=initial,
                   file=LineStream(out), disable=not enabled, mininterval=log_interval,
                   maxinterval=max(log_interval, 10.0), ncols=100, ascii=True)
