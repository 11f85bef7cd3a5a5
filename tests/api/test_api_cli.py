"""`tlgan serve`'s options come from Settings; the server's start-up helpers."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli import ENV_ONLY, main, serve
from api.server import MMAP_THRESHOLD, StartError, bind_socket, tune_allocator
from api.settings import Settings


def test_every_setting_is_an_option_with_its_variable() -> None:
    text = CliRunner().invoke(serve, ["--help"], terminal_width=200).output
    for name in Settings.model_fields:
        flag = "--" + name.replace("_", "-").removesuffix("s")
        if name in ENV_ONLY:
            assert flag not in text  # the API key never goes on a command line
            continue
        assert flag in text, name
        assert f"TLGAN_{name.upper()}" in " ".join(text.split()), name


def test_options_carry_the_settings_ranges() -> None:
    r = CliRunner().invoke(serve, ["--max-queue-wait", "0"])
    assert r.exit_code == 2 and "--max-queue-wait" in r.output and "0<x" in r.output
    r = CliRunner().invoke(serve, ["--log-level", "loud"])
    assert r.exit_code == 2 and "--log-level" in r.output


def test_the_console_script_has_the_librarys_commands_and_serve(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.argv", ["tlgan", "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "generate", "axes", "generator", "extractor", "info"):
        assert f"  {command}" in out, command


def test_a_busy_port_is_one_error_naming_the_setting() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StartError, match=r"^port \(--port / TLGAN_PORT\): cannot listen"):
            bind_socket("127.0.0.1", port)
    free = bind_socket("127.0.0.1", 0)
    try:
        assert free.getsockname()[1] > 0
    finally:
        free.close()
    with pytest.raises(StartError, match=r"^host \(--host / TLGAN_HOST\)"):
        bind_socket("no-such-host.invalid", 0)


def test_allocator_tuning_reports_what_it_did() -> None:
    done = tune_allocator()
    assert done in {f"glibc malloc: 2 arenas, mmap threshold {MMAP_THRESHOLD >> 20} MiB",
                    "jemalloc preloaded: allocator unchanged",
                    "not linux: allocator unchanged", "no glibc: allocator unchanged"}


FAULTS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from api.server import tune_allocator
    done = tune_allocator()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):  # a tuning step's churn: buffers of a few hundred KB to 1 MB
        a = np.ones(1 << 20, np.uint8); b = np.ones(300_000, np.uint8); del a, b
    print(done.startswith("glibc"), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_allocator_reuses_freed_megabyte_buffers() -> None:
    """Buffers of up to a few MB (a photo adapter's activations) are reused from the heap
    once freed, not mapped afresh each time: each fresh 1 MB mapping costs 256 page faults,
    200 of them over 50,000 (the 256 KiB threshold this replaces made tuning twice as
    slow)."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True,
                         check=True, timeout=120, cwd=root).stdout.split()
    if out[0] != "True":
        pytest.skip("not glibc's malloc (jemalloc preloaded?)")
    assert int(out[1]) < 5_000, f"{out[1]} page faults for 200 freed-and-reused buffers"
