"""The artifact folder format shared by every tlgan artifact.

An artifact is a folder holding array/weight files beside a ``config.json`` that records
provenance (what produced it, from which inputs) and the sha256 of every file in it
(``config["files"]``), in the spirit of diffusers' ``save_pretrained``.

Writing is atomic: files go to a temporary sibling folder that is renamed into place at the
end, so an interrupted write never leaves a half-written artifact behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

CONFIG_NAME = "config.json"


class ArtifactError(Exception):
    """An artifact is missing, corrupt or does not match what the caller expects."""


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of a bytes object."""
    return hashlib.sha256(data).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """0o666 less the process umask: what ``open()`` would give (mkstemp gives 0o600)."""
    return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it is renamed over
    ``path`` (atomic on POSIX), when it fails it is removed. The file gets the usual
    umask-based permissions (not mkstemp's 0o600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, default_file_mode())
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write JSON to ``path`` through a temporary file and an atomic rename."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    try:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


@contextlib.contextmanager
def atomic_artifact_dir(out: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside ``out``; on success it replaces ``out`` atomically.

    On any exception the temporary folder is removed and ``out`` is left as it was.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not overwrite:
        raise ArtifactError(f"{out} already exists; pass overwrite=True to replace it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp gives 0o700: let other users read artifacts
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Some writers (safetensors) create files 0o600: give every file the umask-based mode.
    for path in tmp.rglob("*"):
        if path.is_file():
            os.chmod(path, default_file_mode())
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_json_object(path: str | os.PathLike[str], what: str | None = None) -> dict[str, Any]:
    """Read a file holding one JSON object, or raise ArtifactError (prefixed with ``what``)
    saying that it is unreadable, not JSON, or not an object."""
    where = f"{what}: {path}" if what else str(path)
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ArtifactError(f"{where} must hold a JSON object")
    return obj


def save_config(folder: str | os.PathLike[str], config: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``config.json`` into ``folder``, adding the sha256 of every other file in it.

    Returns the config as written.
    """
    folder = Path(folder)
    files = {
        p.name: sha256_file(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != CONFIG_NAME and not p.name.startswith(".")
    }
    full = dict(config)
    full["files"] = files
    write_json_atomic(folder / CONFIG_NAME, full)
    return full


def load_config(folder: str | os.PathLike[str], *, kind: str | None = None,
                verify: bool = True) -> dict[str, Any]:
    """Read and check an artifact folder's ``config.json``.

    Args:
        folder: the artifact folder.
        kind: if given, ``config["kind"]`` must equal it (e.g. ``"axis-bundle"``).
        verify: check the sha256 of every file listed in ``config["files"]``.

    Raises:
        ArtifactError: the folder or its config is missing or unreadable, the kind differs, a
            listed file is missing, or a checksum does not match.
    """
    folder = Path(folder)
    cfg_path = folder / CONFIG_NAME
    if not folder.is_dir():
        raise ArtifactError(f"artifact folder {folder} does not exist")
    if not cfg_path.is_file():
        raise ArtifactError(f"{folder} is not an artifact folder: {CONFIG_NAME} is missing")
    config = read_json_object(cfg_path)
    if kind is not None and config.get("kind") != kind:
        raise ArtifactError(
            f"{folder} holds a {config.get('kind')!r} artifact, expected a {kind!r} artifact"
        )
    if verify:
        files = config.get("files")
        if not isinstance(files, dict):
            raise ArtifactError(f"{cfg_path} lists no file checksums ('files')")
        for name, expected in files.items():
            path = folder / name
            if not path.is_file():
                raise ArtifactError(f"{folder}: file {name} listed in {CONFIG_NAME} is missing")
            actual = sha256_file(path)
            if actual != expected:
                raise ArtifactError(
                    f"{path} is corrupt: sha256 {actual[:12]}... does not match "
                    f"{expected[:12]}... recorded in {CONFIG_NAME}"
                )
    return config
