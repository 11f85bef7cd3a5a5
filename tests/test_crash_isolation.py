"""A test that crashes or hangs fails alone (issue #23): the suite runs in a pytest-xdist
worker (``-n 1`` in pyproject's addopts), so a native crash (a segfault in torch's kernels)
is reported as that test's failure, the worker is replaced, and the run goes on to its
summary and a non-zero exit; a hang ends the worker after pyproject's ``timeout`` (thread
method) and is reported the same way. ``-n 0`` runs in-process (for ``--pdb``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CRASHING = '''
import os
import signal
import time

import pytest


def test_crashes():
    os.kill(os.getpid(), signal.SIGSEGV)


@pytest.mark.timeout(3)
def test_hangs():
    time.sleep(600)  # stands for a deadlock in native code


def test_passes():
    assert 1 + 1 == 2
'''


@pytest.mark.slow
def test_a_crashing_or_hanging_test_fails_alone(tmp_path: Path) -> None:
    (tmp_path / "test_crashing.py").write_text(CRASHING, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # the project's configuration (pyproject's addopts), over a test file outside the project
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-p", "no:cacheprovider", "-q",
         str(tmp_path / "test_crashing.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"exit {proc.returncode}, expected 1 (tests failed)\n{out}"
    assert "2 failed, 1 passed" in proc.stdout, out
    assert "crashed while running 'test_crashing.py::test_crashes'" in proc.stdout, out
    assert "crashed while running 'test_crashing.py::test_hangs'" in proc.stdout, out
