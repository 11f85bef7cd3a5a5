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


#: the library's packages (tests, benches and scripts are not library code)
LIBRARY = ("api", "tlgan", "feature_extractor", "axes", "tlgan_base")
#: the ``tlgan`` CLI's command modules, named for their click groups: they may share a name
#: with a module of another room (``tlgan/cli/discover.py`` beside ``api/routes/discover.py``)
CLI_COMMANDS = Path("tlgan", "cli")


def library_modules() -> list[Path]:
    """Every library module but the packages' ``__init__.py``, relative to the root."""
    return sorted(p.relative_to(ROOT) for pkg in LIBRARY for p in (ROOT / pkg).rglob("*.py")
                  if p.name != "__init__.py")


def repeated_names(modules: list[Path]) -> dict[str, list[str]]:
    """The module file names that more than one of ``modules`` carries, once the CLI's command
    modules are left out, or that name a top-level package (``api/routes/axes.py`` reads as the
    ``axes`` package); {name: [paths]}."""
    by_name: dict[str, list[str]] = {}
    for path in modules:
        if path.parent != CLI_COMMANDS:
            by_name.setdefault(path.stem, []).append(path.as_posix())
    return {name: paths for name, paths in by_name.items()
            if len(paths) > 1 or name in LIBRARY}


def test_repeated_names_are_found() -> None:
    """The check itself sees a repeat, a package's name, and lets a CLI command module by."""
    found = repeated_names([Path("a", "registry.py"), Path("b", "registry.py"),
                            Path("api", "routes", "axes.py"), Path("tlgan", "cli", "edit.py"),
                            Path("tlgan", "pipeline", "edit.py")])
    assert found == {"registry": ["a/registry.py", "b/registry.py"],
                     "axes": ["api/routes/axes.py"]}


def test_no_two_library_modules_share_a_name() -> None:
    """A module's file name says which room it is in: no two library modules share one (the
    CLI's command modules, named for their click groups, excepted), and none is named like a
    top-level package."""
    modules = library_modules()
    assert len(modules) > 100
    assert repeated_names(modules) == {}
