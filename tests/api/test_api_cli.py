"""`tlgan serve`'s options come from Settings; the server's start-up helpers."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from api.cli import ENV_ONLY, main, serve
from api.server import StartError, bind_socket, tune_allocator
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
    assert done in {"glibc malloc: 2 arenas, mmap threshold 256 KiB",
                    "jemalloc preloaded: allocator unchanged",
                    "not linux: allocator unchanged", "no glibc: allocator unchanged"}
