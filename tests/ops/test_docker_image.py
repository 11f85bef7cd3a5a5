"""The Docker image itself: built here by ``scripts/docker_image.sh`` and run as an operator
runs it.

Needs a Docker daemon (Debian: ``apt-get install docker.io``; root starts ``dockerd``):
skipped with the reason without one, unless ``TLGAN_REQUIRE_DOCKER=1`` (CI), where that
fails. ``TLGAN_DOCKER_IMAGE=NAME`` tests an image built beforehand instead of building
``tlgan:test`` (the build reuses Docker's layer cache: warm, it takes seconds when only the
source changed little).

Checks: nothing of the build machine in the image (no pip configuration, no local path,
no index in its environment); the container runs with a read-only root file system (a
tmpfs at /tmp), as uid 10001, without capabilities; /readyz, /generate, /edit, /encode (a
multipart photo), /metrics and the HEALTHCHECK answer; ``docker stop`` (SIGTERM) lets the
requests in flight finish and the container exits 0. The image size is printed
(``[docker-image] ...`` line).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from ops_helpers import REPO, VENV_BIN
from prometheus_client.parser import text_string_to_metric_families

from tlgan.client import Client

pytestmark = pytest.mark.slow

BUILD_TIMEOUT_S = 2400  # cold: a debootstrap stand-in base and every wheel (minutes)
TEST_IMAGE = "tlgan:test"


def docker_problem() -> str | None:
    """Why Docker cannot be used here, or None."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client on PATH (Debian: apt-get install docker.io)"
    try:
        proc = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer in 60 s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return (f"no Docker daemon answers ({last}): start one (as root: dockerd, or "
                "bash scripts/docker_image.sh, which starts it)")
    return None


def say(config: pytest.Config, line: str) -> None:
    """Write a ``[docker-image]`` line to the terminal now, past output capture (the figures
    belong in the CI log whether the test passes or not). On stderr: the tests run in an
    xdist worker (pyproject's addopts), whose stdout never reaches the terminal."""
    capman = config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(f"\n[docker-image] {line}", file=sys.stderr, flush=True)


def docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    """Run ``docker ARGS``; its stdout. ``check``: fail the test with stderr on an error."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"docker {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> str:
    """The image under test: $TLGAN_DOCKER_IMAGE, or tlgan:test built by the script."""
    problem = docker_problem()
    if problem is not None:
        if os.environ.get("TLGAN_REQUIRE_DOCKER") == "1":
            pytest.fail(f"{problem} (TLGAN_REQUIRE_DOCKER=1)")
        pytest.skip(problem)
    given = os.environ.get("TLGAN_DOCKER_IMAGE")
    if given:
        docker("image", "inspect", given)
        return given
    log = tmp_path_factory.mktemp("docker-build") / "build.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TLGAN_")}
    env["TLGAN_IMAGE"] = TEST_IMAGE
    start = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.run(["bash", str(REPO / "scripts" / "docker_image.sh")], cwd=REPO,
                              env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=BUILD_TIMEOUT_S)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, f"the image build failed:\n{text[-6000:]}"
    for line in text.splitlines():
        if line.startswith("[docker-image]"):
            say(pytestconfig, line.removeprefix("[docker-image] "))
    say(pytestconfig, f"build (scripts/docker_image.sh) took {time.monotonic() - start:.0f} s")
    return TEST_IMAGE


def host_pip_locations() -> set[str]:
    """Local paths and file:// indexes from this machine's pip configuration (find-links,
    indexes, constraints): none of them may appear in the image."""
    proc = subprocess.run([str(VENV_BIN / "python"), "-m", "pip", "config", "list"],
                          capture_output=True, text=True, timeout=60)
    found: set[str] = set()
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if not re.search(r"find-links|index-url|constraint|requirement", key):
            continue
        for item in value.strip("'\"").split():
            item = item.removeprefix("file://")
            if item.startswith("/"):
                found.add(item.rstrip("/"))
    for name in ("PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        for item in os.environ.get(name, "").split():
            item = item.removeprefix("file://")
            if item.startswith("/"):
                found.add(item.rstrip("/"))
    return found


def test_image_holds_nothing_of_the_build_machine(image: str) -> None:
    forbidden = sorted({str(REPO), *host_pip_locations()})
    meta = docker("image", "inspect", image)
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    for text, where in ((meta, "docker image inspect"), (history, "docker history")):
        leaked = [f for f in forbidden if f in text]
        assert not leaked, f"{where} names this machine's {leaked}"
        assert not re.search(r"://[^/\s@\"']+@", text), f"{where} has a URL with credentials"
    env = json.loads(meta)[0]["Config"]["Env"]
    assert not [e for e in env if e.startswith(("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
                                                "PIP_FIND_LINKS", "PIP_CONSTRAINT"))], env
    # pip inside the image: configured by the image's ENV only, no file of the build machine
    config = docker("run", "--rm", "--network", "none", "--entrypoint", "python", image,
                    "-m", "pip", "config", "list")
    assert all(line.startswith(":env:") for line in config.splitlines()), config
    # the file system: no pip configuration file, no trace of this machine's paths
    probe = ("ls -d /etc/pip.conf /etc/xdg/pip /root/.config/pip /root/.pip "
             "/home/tlgan/.config/pip 2>/dev/null; grep -rIlF "
             + " ".join(f"-e '{f}'" for f in forbidden)
             + " /app /opt/venv /etc /home /root /usr/local 2>/dev/null | head -20; true")
    found = docker("run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "sh",
                   image, "-c", probe, timeout=600)
    assert found.strip() == "", f"the image holds this machine's files or paths:\n{found}"


# -- the container, as an operator runs it ---------------------------------------------------
class Container:
    """A running container of the image: its name and its published URL."""

    def __init__(self, image: str) -> None:
        self.name = f"tlgan-test-{uuid.uuid4().hex[:8]}"
        docker("run", "-d", "--name", self.name, "--read-only", "--tmpfs", "/tmp",
               "--user", "10001:10001", "--cap-drop", "ALL",
               "--security-opt", "no-new-privileges", "--stop-timeout", "30",
               "-p", "127.0.0.1::8000", image)
        port = docker("port", self.name, "8000/tcp").split()[0].rsplit(":", 1)[1]
        self.url = f"http://127.0.0.1:{port}"

    def inspect(self, template: str) -> str:
        return docker("inspect", "-f", template, self.name).strip()

    def logs(self) -> tuple[str, str]:
        """(stdout: the access log, stderr: the server log)."""
        proc = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True,
                              timeout=60)
        return proc.stdout, proc.stderr

    def wait_ready(self, timeout: float = 300) -> None:
        with Client(self.url, timeout=5.0) as client:
            if client.wait_ready(timeout, interval=0.5,
                                 alive=lambda: self.inspect("{{.State.Running}}") == "true"):
                return
        if self.inspect("{{.State.Running}}") != "true":
            pytest.fail(f"the container exited ({self.inspect('{{.State.ExitCode}}')}):\n"
                        f"{self.logs()[1][-4000:]}")
        pytest.fail(f"not ready after {timeout} s:\n{self.logs()[1][-4000:]}")

    def remove(self) -> None:
        docker("rm", "-f", self.name, check=False)


@pytest.fixture
def container(image: str) -> Iterator[Container]:
    running = Container(image)
    try:
        yield running
    finally:
        running.remove()


def in_flight(url: str) -> float:
    """The server's tlgan_requests_in_flight gauge."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tlgan_requests_in_flight":
                return float(sample.value)
    return 0.0


def test_image_serves_read_only_as_non_root_and_drains_on_stop(
        image: str, container: Container, pytestconfig: pytest.Config,
        record_property: Callable[[str, object], None]) -> None:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).strip())
    say(pytestconfig, f"image {image}: {size} bytes ({size / 1e9:.2f} GB)")
    record_property("image_size_bytes", size)
    assert size < 4_000_000_000, f"the image grew to {size / 1e9:.2f} GB"
    container.wait_ready()
    # the server (PID 1) runs as 10001 on a read-only root file system, without capabilities
    status = docker("exec", container.name, "cat", "/proc/1/status")
    assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, re.M), status
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert container.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
    write = subprocess.run(["docker", "exec", container.name, "sh", "-c",
                            "echo x > /app/probe || echo x > /home/tlgan/probe"],
                           capture_output=True, text=True, timeout=60)
    assert write.returncode != 0 and "Read-only file system" in write.stderr, write.stderr

    with httpx.Client(base_url=container.url, timeout=120) as client:
        gen = client.post("/generate", json={"seed": 7, "count": 2},
                          headers={"X-Request-ID": "docker-1"})
        assert gen.status_code == 200, gen.text
        assert gen.headers["x-request-id"] == "docker-1"
        faces = gen.json()["faces"]
        assert [f["seed"] for f in faces] == [7, 8] and faces[0]["features"]
        axes = client.get("/axes").json()["axes"]
        assert axes, "the image has no axis bundle"
        axis = axes[0]["name"]
        edit = client.post("/edit", json={"latent": faces[0]["latent"], "moves": {axis: 2.0}})
        assert edit.status_code == 200, edit.text
        assert edit.json()["image"] != faces[0]["image"], "the move changed nothing"
        # a photo upload: the generated face as a PNG file, encoded back into a latent
        photo = base64.b64decode(faces[0]["image"])
        enc = client.post("/encode", files={"image": ("face.png", photo, "image/png")},
                          data={"steps": "5"})
        assert enc.status_code == 200, enc.text
        body = enc.json()
        assert body["steps"] == 5 and len(body["latent"]) == len(faces[0]["latent"])
        assert body["quality"]["psnr"] > 12, body["quality"]
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        for route in ("/generate", "/edit", "/encode"):
            assert (f'tlgan_request_duration_seconds_count{{method="POST",route="{route}",'
                    'status="2xx"} 1.0') in metrics.text, route

    # the image's HEALTHCHECK (every 15 s) reports healthy
    deadline = time.monotonic() + 90
    while container.inspect("{{.State.Health.Status}}") != "healthy":
        assert time.monotonic() < deadline, container.inspect("{{json .State.Health}}")
        time.sleep(1)

    # docker stop (SIGTERM) with requests in flight: they finish, then exit 0
    n = 3
    results: list[object] = [None] * n

    def one(i: int) -> None:
        try:
            results[i] = httpx.post(f"{container.url}/generate", timeout=120,
                                    json={"seed": i, "count": 64, "with_features": False})
        except httpx.HTTPError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while in_flight(container.url) < n + 1:  # + the scrape itself
        assert time.monotonic() < deadline, "the requests never were in flight together"
        time.sleep(0.05)
    start = time.monotonic()
    docker("stop", container.name, timeout=120)
    stop_s = time.monotonic() - start
    for t in threads:
        t.join(120)
    statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
    assert statuses == [200] * n, statuses
    exit_code = container.inspect("{{.State.ExitCode}}")
    _, err = container.logs()
    assert exit_code == "0", err[-4000:]
    assert stop_s < 30, f"docker stop took {stop_s:.1f} s: the container was killed"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "shutdown complete: batcher drained" in lines[-1], err[-4000:]
    assert "Traceback" not in err
    say(pytestconfig, f"docker stop with {n} requests in flight: exit 0 in {stop_s:.1f} s")
