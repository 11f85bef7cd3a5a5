"""The container files: hadolint, their structure, and the ENTRYPOINT/HEALTHCHECK run as written.

No Docker engine runs here, so CI checks what it can without one: the Dockerfile passes
hadolint (installed from PyPI by the dev extra) with no finding at all, its instructions say
what the operator relies on, compose.yaml reserves a GPU, mounts the operator's models and
lists every TLGAN_* setting, and the image's ENTRYPOINT and HEALTHCHECK commands run on
this machine exactly as written (with the image's TLGAN_* ENV, the venv standing in for
/opt/venv and the repository for /app).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_helpers import REPO, VENV_BIN, clean_env

from api.settings import Settings
from tlgan.server_process import free_port

DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return out


def only(name: str) -> str:
    """The arguments of the one (last) instruction ``name``."""
    found = [args for word, args in instructions() if word == name]
    assert found, f"no {name} instruction"
    return found[-1]


def env_of_image() -> dict[str, str]:
    """The ENV instructions' key=value pairs."""
    env: dict[str, str] = {}
    for word, args in instructions():
        if word == "ENV":
            for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', args):
                env[key] = value.strip('"')
    return env


def exec_form(args: str, what: str) -> list[str]:
    """A JSON-array (exec form) command."""
    argv = json.loads(args)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), what
    return argv


def healthcheck_argv() -> list[str]:
    """The HEALTHCHECK's CMD in exec form."""
    args = only("HEALTHCHECK")
    assert " CMD " in f" {args}", args
    return exec_form(args.split("CMD", 1)[1].strip(), "HEALTHCHECK CMD must be exec form")


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: install the dev extra (pip install -e '.[dev]')"
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_dockerfile_structure() -> None:
    words = [w for w, _ in instructions()]
    assert words[0] == "FROM" and words.count("FROM") == 1
    assert only("FROM") == "python:3.11-slim"
    args = {a.split("=", 1)[0]: a.split("=", 1)[1].strip('"') if "=" in a else None
            for w, a in instructions() if w == "ARG"}
    assert args["TORCH_SPEC"] == "torch==2.13.0"
    assert "PIP_INDEX_URL" in args and "PIP_EXTRA_INDEX_URL" in args
    env = env_of_image()
    assert env["TLGAN_DEVICE"] == "auto"
    assert env["PATH"].startswith("/opt/venv/bin:")
    # bounded memory under load (see the comment in the Dockerfile and bench/load.py)
    assert env["LD_PRELOAD"] == "libjemalloc.so.2"
    assert any(w == "RUN" and "libjemalloc2" in a for w, a in instructions())
    assert set(k for k in env if k.startswith("TLGAN_")) <= {f"TLGAN_{f.upper()}"
                                                           for f in Settings.model_fields}
    user = only("USER")
    assert user.split(":")[0] not in ("root", "0"), "the service must not run as root"
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    assert only("EXPOSE") == "8000"
    assert exec_form(only("ENTRYPOINT"), "ENTRYPOINT") == ["tlgan", "serve", "--host",
                                                           "0.0.0.0"]
    # the package and its default artifacts come with the source; setup.sh installs them
    assert only("COPY") == ". /app" and only("WORKDIR") == "/app"
    setup = [a for w, a in instructions() if w == "RUN" and "scripts/setup.sh" in a]
    assert setup and 'TLGAN_EXTRAS=""' in setup[0] and "TLGAN_VENV=/opt/venv" in setup[0]
    assert "load_generator(None)" in setup[0], "the build checks the default generator loads"
    health = healthcheck_argv()
    assert health[:2] == ["python", "/app/docker/healthcheck.py"]
    assert "/readyz" in (DOCKER / "healthcheck.py").read_text()


def test_dockerfile_needs_no_frontend_image() -> None:
    """A ``# syntax=`` directive makes BuildKit fetch that frontend image from a registry
    first; without one the daemon's built-in frontend builds the file, so only the base
    image is fetched (and scripts/docker_image.sh builds offline with a stand-in base)."""
    head = DOCKERFILE.read_text().splitlines()
    directives = [ln for ln in head[:5] if re.match(r"#\s*syntax\s*=", ln, re.I)]
    assert not directives, directives


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = set((DOCKER / "Dockerfile.dockerignore").read_text().split())
    assert {".git", ".venv", "runs", "pack", "**/__pycache__", ".mypy_cache"} <= ignored
    for kept in ("feature_extractor", "tlgan", "api", "axes", "scripts", "pyproject.toml",
                 "docker"):
        assert kept not in ignored


def compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_gpu_volume_and_settings() -> None:
    service = compose()["services"]["tlgan"]
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"]
               and (d.get("count") in (1, "all") or d.get("device_ids")) for d in devices)
    assert any(str(v).endswith(":/models:ro") for v in service["volumes"])
    env = service["environment"]
    names = {f"TLGAN_{f.upper()}" for f in Settings.model_fields}
    assert set(env) <= names, set(env) - names
    # every setting is listed (the host is fixed by the ENTRYPOINT's --host 0.0.0.0)
    assert names - set(env) == {"TLGAN_HOST"}
    # stop_grace_period must cover the graceful timeout
    grace = int(str(service["stop_grace_period"]).rstrip("s"))
    default_timeout = str(env["TLGAN_GRACEFUL_TIMEOUT"]).rsplit("-", 1)[-1].rstrip("}")
    assert grace > int(default_timeout)


def _netns_available() -> bool:
    unshare = shutil.which("unshare")
    if not unshare or sys.platform != "linux":
        return False
    try:
        return subprocess.run([unshare, "--net", "--map-root-user", "true"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
def test_entrypoint_runs_as_written(tmp_path: Path) -> None:
    """ENTRYPOINT + the image's TLGAN_* ENV: ready (HEALTHCHECK passes), serves, metrics,
    and SIGTERM gives exit code 0 with a clean shutdown line."""
    entrypoint = exec_form(only("ENTRYPOINT"), "ENTRYPOINT")
    workdir = only("WORKDIR")
    health = [str(REPO / a[len(workdir) + 1:]) if a.startswith(workdir + "/") else a
              for a in healthcheck_argv()]
    image_env = {k: v for k, v in env_of_image().items() if k.startswith("TLGAN_")}
    image_env["TLGAN_TORCH_THREADS"] = "1"
    isolated = _netns_available()
    if not isolated:  # no network namespace here: the image's port may be taken
        image_env["TLGAN_PORT"] = str(free_port())
    spec = {"entrypoint": entrypoint, "healthcheck": health, "env": clean_env(**image_env),
            "port": int(image_env["TLGAN_PORT"]), "cwd": str(tmp_path), "lo_up": isolated,
            "logs": str(tmp_path)}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    probe = [sys.executable, str(Path(__file__).with_name("entrypoint_probe.py")),
             str(tmp_path / "spec.json")]
    if isolated:
        probe = ["unshare", "--net", "--map-root-user", *probe]
    proc = subprocess.run(probe, capture_output=True, text=True, timeout=300,
                          env=clean_env())
    err = (tmp_path / "entrypoint.err").read_text() if (tmp_path / "entrypoint.err").exists() \
        else ""
    assert proc.returncode == 0, proc.stderr + err
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["healthcheck_before"] != 0, "HEALTHCHECK passed with no server"
    assert report["ready"], err
    assert report["generate_status"] == 200 and report["generate_faces"] == 2, report
    assert report["generate_request_id"] == "probe-1"
    assert report["metrics_status"] == 200 and report["metrics_has_latency"]
    assert report["exit_code"] == 0, err
    # host from the ENTRYPOINT, port from TLGAN_PORT, device auto -> this machine's cpu
    assert f"listening on http://0.0.0.0:{spec['port']}" in err, err
    assert "shutdown complete: batcher drained" in err.splitlines()[-1], err
    assert "Traceback" not in err
    access = [json.loads(line) for line in
              (tmp_path / "entrypoint.out").read_text().splitlines() if line.strip()]
    generate = [a for a in access if a["route"] == "/generate"]
    assert generate and generate[0]["request_id"] == "probe-1" and generate[0]["status"] == 200
