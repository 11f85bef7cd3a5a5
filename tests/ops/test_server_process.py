"""tlgan.server_process, the harness every bench and operations test starts servers with:
ready on a free loopback port, logs kept, SIGTERM then SIGKILL, failures named."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
from ops_helpers import VENV_BIN, TinyArtifacts, clean_env

from tlgan.server_process import ServerNotReady, ServerProcess, running_server

#: a stand-in "server" that never answers: a sleeping interpreter (argv after -c is ignored)
SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")
#: the same, deaf to SIGTERM (it says "deaf" once it is)
DEAF = (sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
        "signal.SIG_IGN); print('deaf', flush=True); time.sleep(120)")


@pytest.mark.slow
def test_running_server_serves_then_drains_on_sigterm(tiny_artifacts: TinyArtifacts,
                                                      tmp_path: Path) -> None:
    with running_server("--generator", str(tiny_artifacts.plugin), "--extractor", "none",
                        "--bundle", "none", "--encoder", "none",
                        env=clean_env(TLGAN_TORCH_THREADS="1"), logs=tmp_path / "logs",
                        launcher=[str(VENV_BIN / "tlgan")]) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.exit_code is None
        with server.client() as client:
            assert client.ready()
            assert len(client.generate(seed=3, with_features=False)) == 1
    assert server.exit_code == 0, server.stderr
    assert "shutdown complete: batcher drained" in server.last_words()
    assert (tmp_path / "logs" / f"server-{server.port}.err").read_text() == server.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=5)


@pytest.mark.slow
def test_a_server_that_exits_is_not_ready_with_its_last_words(
        tiny_artifacts: TinyArtifacts) -> None:
    with pytest.raises(ServerNotReady) as failed, running_server(
            "--generator", str(tiny_artifacts.plugin), "--extractor", "none", "--encoder",
            "none", env=clean_env(TLGAN_BUNDLE="/nonexistent/bundle"),
            launcher=[str(VENV_BIN / "tlgan")]):
        pytest.fail("a server without its bundle became ready")
    assert failed.value.exited
    assert failed.value.last_words == ("Error: bundle (--bundle / TLGAN_BUNDLE): artifact "
                                       "folder /nonexistent/bundle does not exist")
    assert "exited with 2" in str(failed.value)


def test_a_server_that_never_answers_is_stopped_after_the_timeout() -> None:
    server = ServerProcess(launcher=SLEEPER)
    try:
        with pytest.raises(ServerNotReady, match=r"not ready after 0\.5 s") as failed:
            server.wait_ready(0.5)
        assert not failed.value.exited
        assert server.exit_code == -15  # SIGTERM: stopped, not left behind
    finally:
        server.close()


def test_stop_kills_a_server_deaf_to_sigterm_after_its_timeout() -> None:
    server = ServerProcess(launcher=DEAF)
    try:
        deadline = time.monotonic() + 60
        while "deaf" not in server.stdout:
            assert server.alive() and time.monotonic() < deadline, server.stderr
            time.sleep(0.05)
        assert server.stop(timeout=1.0) == -9
        assert not server.alive()
    finally:
        server.close()
