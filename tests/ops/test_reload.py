"""SIGHUP reloads a real `tlgan serve`'s models without a restart: a bundle rewritten on disk
is served once loaded; a bad one keeps the old models and logs one line."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from ops_helpers import StartServer, TinyArtifacts

from axes.bundle import AxisBundle
from tlgan.server_process import ServerProcess


def _bundle_id(server: ServerProcess) -> str:
    ready = httpx.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    return str(ready.json()["bundle"])


def _wait_for(what: str, check: object, server: ServerProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, f"server exited:\n{server.stderr}"
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"{what} not seen within {timeout} s:\n{server.stderr}")


def _with_extra_axis(tiny: TinyArtifacts, out: Path) -> None:
    """Rewrite the bundle at ``out`` (atomically, as `tlgan axes add` does) with one more
    axis, Freckles, orthogonal to the others."""
    rng = np.random.default_rng(1)
    n = len(tiny.names) + 1
    size = np.load(tiny.bundle / "axes.npz")["directions"].shape[1]
    q, _ = np.linalg.qr(rng.standard_normal((size, n)))
    dirs = q.T.astype(np.float32)
    names = [*tiny.names, "Freckles"]
    AxisBundle(names=names, directions=dirs, raw_directions=dirs, references=["Male", "Young"],
               stats=[{"name": a, "coef_norm": 2.0} for a in names],
               provenance={"generator": "tiny-dcgan", "extractor": "tiny-extractor"}).save(out)


@pytest.mark.slow
def test_sighup_reloads_a_changed_bundle_and_keeps_the_old_one_when_bad(
        start_server: StartServer, tiny_artifacts: TinyArtifacts, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_artifacts.bundle, bundle)
    server = start_server("--generator", str(tiny_artifacts.plugin), "--extractor", "none",
                          "--bundle", str(bundle))
    first = _bundle_id(server)
    latent = [0.1] * 16
    edit = {"latent": latent, "moves": {"Freckles": 1.0}, "with_features": False}
    unknown = httpx.post(f"{server.url}/edit", json=edit, timeout=30)
    assert unknown.status_code == 422 and "Freckles" in unknown.text
    assert "Freckles" not in httpx.get(f"{server.url}/openapi.json", timeout=10).text

    # a new axis on disk, then SIGHUP: served once loaded, without a restart
    _with_extra_axis(tiny_artifacts, bundle)
    server.proc.send_signal(signal.SIGHUP)
    _wait_for("the new bundle", lambda: _bundle_id(server) != first, server)
    second = _bundle_id(server)
    axes = [a["name"] for a in httpx.get(f"{server.url}/axes", timeout=10).json()["axes"]]
    assert "Freckles" in axes
    ok = httpx.post(f"{server.url}/edit", json=edit, timeout=30)
    assert ok.status_code == 200, ok.text
    # the API document (cached once built) names the new axis too
    assert "Freckles" in httpx.get(f"{server.url}/openapi.json", timeout=10).text
    assert server.stderr.count("reloaded:") == 1

    # a corrupt bundle: the old models stay, one log line says why
    files = json.loads((bundle / "config.json").read_text())["files"]
    target = bundle / sorted(files)[0]
    target.write_bytes(target.read_bytes()[:-7] + b"garbage")
    server.proc.send_signal(signal.SIGHUP)
    _wait_for("the failed reload", lambda: "reload failed" in server.stderr, server)
    failed = [line for line in server.stderr.splitlines() if "reload failed" in line]
    assert len(failed) == 1 and second in failed[0] and str(bundle) in failed[0], failed
    assert "Traceback" not in server.stderr
    assert _bundle_id(server) == second
    assert httpx.post(f"{server.url}/edit", json=edit, timeout=30).status_code == 200

    assert server.stop() == 0
