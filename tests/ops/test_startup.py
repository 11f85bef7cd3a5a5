"""Start-up of a real `tlgan serve` process: the port answers while the models load.

The generator is the tiny plug-in of ``tiny_artifacts`` with a module whose constructor waits
for a gate file, so the test decides when loading ends (no timing guesses).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest
from ops_helpers import StartServer, TinyArtifacts

from tlgan.server_process import ServerProcess

GATED_MODULE = '''
import time
from pathlib import Path

from tlgan.generators.dcgan import DCGANGenerator

GATE = Path(__file__).with_name("gate")


class GatedGenerator(DCGANGenerator):
    """The tiny DCGAN, built only once the test creates the gate file."""

    def __init__(self, **kwargs):
        deadline = time.monotonic() + 120
        while not GATE.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        super().__init__(**kwargs)
'''


def gated_plugin(tiny: TinyArtifacts, folder: Path) -> tuple[Path, Path]:
    """A copy of the tiny plug-in whose module waits for ``folder/gate``; returns the plug-in
    and the gate path."""
    (folder / "gated_generator.py").write_text(GATED_MODULE)
    cfg = json.loads(tiny.plugin.read_text())
    cfg["module"] = "gated_generator:GatedGenerator"
    cfg["file"] = str(tiny.plugin.parent / cfg["file"])
    plugin = folder / "gated.json"
    plugin.write_text(json.dumps(cfg))
    return plugin, folder / "gate"


def wait_listening(server: ServerProcess, timeout: float = 120.0) -> httpx.Response:
    """Poll /readyz until the port answers; the first answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, server.stderr
        try:
            return httpx.get(f"{server.url}/readyz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"the port never answered:\n{server.stderr}")


@pytest.mark.slow
def test_the_port_answers_503_while_the_models_load(start_server: StartServer,
                                                     tiny_artifacts: TinyArtifacts,
                                                     tmp_path: Path) -> None:
    plugin, gate = gated_plugin(tiny_artifacts, tmp_path)
    server = start_server("--generator", str(plugin), "--extractor", "none", "--bundle",
                          "none", "--encoder", "none", wait=False, PYTHONPATH=str(tmp_path))
    ready = wait_listening(server)
    assert ready.status_code == 503 and ready.json()["status"] == "loading"
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    work = httpx.post(f"{server.url}/generate", json={"seed": 1}, timeout=5)
    assert work.status_code == 503 and work.headers["retry-after"] == "1"
    assert work.json()["detail"].startswith("unavailable: the models are still loading")
    assert httpx.get(f"{server.url}/axes", timeout=5).status_code == 503
    assert "ready:" not in server.stderr
    gate.touch()
    server.wait_ready()
    assert httpx.post(f"{server.url}/generate", json={"seed": 1, "with_features": False},
                      timeout=30).status_code == 200
    assert server.stop() == 0, server.stderr


@pytest.mark.slow
def test_sigterm_while_loading_exits_0(start_server: StartServer,
                                       tiny_artifacts: TinyArtifacts, tmp_path: Path) -> None:
    plugin, _ = gated_plugin(tiny_artifacts, tmp_path)
    server = start_server("--generator", str(plugin), "--extractor", "none", "--bundle",
                          "none", "--encoder", "none", wait=False, PYTHONPATH=str(tmp_path))
    assert wait_listening(server).status_code == 503
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0, server.stderr
    assert "stopped before the models were loaded" in server.stderr
    assert "Traceback" not in server.stderr


@pytest.mark.slow
def test_a_missing_bundle_closes_the_port_with_one_line_naming_the_setting(
        start_server: StartServer, tiny_artifacts: TinyArtifacts) -> None:
    server = start_server("--generator", str(tiny_artifacts.plugin), "--extractor", "none",
                          "--encoder", "none", wait=False, TLGAN_BUNDLE="/nonexistent/bundle")
    assert server.proc.wait(120) == 2
    lines = [ln for ln in server.stderr.splitlines() if ln.strip()]
    assert lines == ["Error: bundle (--bundle / TLGAN_BUNDLE): artifact folder "
                     "/nonexistent/bundle does not exist"], server.stderr
