"""bench/load.py in a shortened form: 10 s at concurrency 64 against /edit, zero errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ops_helpers import REPO, TinyArtifacts, clean_env


@pytest.mark.slow
def test_load_10s_at_concurrency_64_has_no_errors(tiny_artifacts: TinyArtifacts,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "load.py"), "--duration", "10",
         "--concurrency", "64", "--generator", str(tiny_artifacts.plugin), "--extractor",
         "none", "--bundle", str(tiny_artifacts.bundle), "--torch-threads", "1",
         "--max-errors", "0", "--max-rss-growth-mb", "200", "--json", str(out)],
        capture_output=True, text=True, timeout=240, cwd=REPO, env=clean_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["errors"] == 0 and result["errors_by_status"] == {}, result
    assert result["requests"] >= 100, result  # it really loaded the server
    assert result["axes"] == len(tiny_artifacts.names)  # moves along real axes
    assert result["latency_ms"]["p99"] <= result["latency_ms"]["max"]
    rss = result["rss_mb"]
    assert rss["samples"] >= 8 and rss["end"] < rss["start"] + 200, rss
    assert result["server_exit_code"] == 0
    assert result["server_batches"]["queue_rejected"] == 0
