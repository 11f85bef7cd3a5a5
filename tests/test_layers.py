"""The layers hold: ``lint-imports`` checks pyproject's import-linter contracts (api > tlgan >
(feature_extractor | axes) > tlgan_base; feature_extractor and axes independent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    assert exe.is_file(), f"{exe} is missing: install the dev extra (pip install -e .[dev])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    res = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_no_import_cycle() -> None:
    """No module imports, directly or through others, a module that imports it (imports
    made only for type checking excepted)."""
    import grimp

    graph = grimp.build_graph("api", "tlgan", "feature_extractor", "axes", "tlgan_base",
                              exclude_type_checking_imports=True)
    cycles = sorted({tuple(sorted((m, dep))) for m in graph.modules
                     for dep in graph.find_modules_directly_imported_by(m)
                     if graph.chain_exists(importer=dep, imported=m)})
    assert cycles == []
