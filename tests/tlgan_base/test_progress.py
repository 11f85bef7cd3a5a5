"""tlgan_base.progress: bars that log one line per update off a terminal."""

from __future__ import annotations

import io
import itertools
import subprocess
import sys

from tlgan_base.progress import LineStream, progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_each_redraw_is_one_line_without_repeats() -> None:
    out = io.StringIO()
    with progress_bar(total=1000, desc="work", unit="face", stream=out,
                      log_interval=0.0) as bar:
        for _ in range(100):
            bar.update(10)
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("work:   0%") and "1000/1000" in lines[-1]
    assert all(line.strip() for line in lines)
    assert all(a != b for a, b in itertools.pairwise(lines))


def test_off_a_terminal_redraws_are_rate_limited() -> None:
    out = io.StringIO()
    with progress_bar(total=10_000, desc="slow", stream=out, log_interval=3600.0) as bar:
        for _ in range(10_000):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines  # the first state and the final one, nothing between
    assert "10000/10000" in lines[-1]


def test_transient_bar_leaves_no_blank_lines_and_disabled_writes_nothing() -> None:
    out = io.StringIO()
    for _ in progress_bar(range(5), desc="tmp", stream=out, leave=False, log_interval=0.0):
        pass
    assert all(line.strip() for line in out.getvalue().splitlines())
    quiet = io.StringIO()
    with progress_bar(total=3, stream=quiet, enabled=False) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""


def test_on_a_terminal_it_redraws_in_place() -> None:
    out = _Tty()
    with progress_bar(total=3, desc="tty", stream=out) as bar:
        bar.update(3)
    assert "\r" in out.getvalue()


def test_line_stream_splits_on_carriage_returns() -> None:
    out = io.StringIO()
    s = LineStream(out)
    s.write("\ra 1")
    s.write("\ra 1")
    s.write("\ra 2\n")
    s.write("\r     \r")
    assert out.getvalue() == "a 1\na 2\n"
    assert not s.isatty()


def test_ground_floor_imports_none_of_our_other_packages() -> None:
    code = ("import sys, tlgan_base.progress\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'tlgan', 'api', 'axes', 'feature_extractor', 'torch'})\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_off_a_terminal_postfix_changes_wait_for_the_next_redraw() -> None:
    out = io.StringIO()
    bar = progress_bar(range(500), desc="epoch 1/2", unit="batch", stream=out,
                       log_interval=3600.0)
    for i in bar:
        bar.set_postfix(loss=f"{1 / (i + 1):.4f}")  # as the training loops do, every batch
        bar.set_postfix_str(f"batch {i}")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "500/500" in lines[-1] and "batch 499" in lines[-1]
