"""The Kubernetes manifests in deploy/: schemas, checkov, and agreement with the app.

No cluster runs here, so CI checks what it can without one: every manifest validates
(strictly: no unknown field) against the Kubernetes API schemas of every version from
MIN_KUBERNETES to the newest that ``kubernetes-validate`` (dev extra) ships, checkov finds
nothing (it lives in ``.venv-tools``, made by scripts/setup_tools.sh, because its pinned
dependencies clash with the project's), and the manifests agree with the code: the probes'
paths are the app's, ports and timeouts match the ConfigMap's TLGAN_* settings, the
autoscaler's metric is one the app exports and the adapter rule serves, the selectors
select the pods, the pod runs as the image's user with nothing writable but /tmp.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from fastapi.testclient import TestClient
from ops_helpers import REPO, VENV_BIN

from api.app import create_app
from api.settings import Settings
from tlgan.pipeline import Pipeline

DEPLOY = REPO / "deploy"
KUBE = DEPLOY / "kubernetes"
ADAPTER = DEPLOY / "prometheus-adapter" / "values.yaml"
#: The oldest Kubernetes the manifests are for: the preStop `sleep` action is on by default
#: from 1.30 (beta; alpha and off in 1.29).
MIN_KUBERNETES = (1, 30)
#: Checks skipped on purpose (each with its reason in a checkov.io/skip annotation).
ALLOWED_SKIPS = {"CKV_K8S_35"}
#: Where the process may write: the emptyDir.
WRITABLE = "/tmp"


# -- loading ---------------------------------------------------------------------------------
def kustomization() -> dict[str, Any]:
    data = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert isinstance(data, dict)
    return data


def documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) of every resource kustomization.yaml lists, in its order."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name in kustomization()["resources"]:
        for doc in yaml.safe_load_all((KUBE / name).read_text()):
            if doc is not None:
                assert isinstance(doc, dict), name
                out.append((name, doc))
    return out


def the(kind: str) -> dict[str, Any]:
    """The one resource of ``kind``."""
    found = [doc for _, doc in documents() if doc["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} resources"
    return found[0]


def pod() -> dict[str, Any]:
    return the("Deployment")["spec"]["template"]


def container() -> dict[str, Any]:
    containers = pod()["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def config() -> dict[str, str]:
    return the("ConfigMap")["data"]


def container_port(name_or_number: str | int) -> int:
    """A port of the container, by name or number."""
    for port in container()["ports"]:
        if name_or_number in (port.get("name"), port["containerPort"]):
            return int(port["containerPort"])
    raise AssertionError(f"the container has no port {name_or_number!r}")


def probes() -> dict[str, dict[str, Any]]:
    c = container()
    return {kind: c[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
            if kind in c}


# -- the schemas -----------------------------------------------------------------------------
def kubernetes_versions() -> list[str]:
    from kubernetes_validate import utils

    versions = sorted({tuple(int(p) for p in v.split(".")[:2]) for v in utils.all_versions()})
    chosen = [f"{a}.{b}" for a, b in versions if (a, b) >= MIN_KUBERNETES]
    assert chosen, f"kubernetes-validate has no schema for {MIN_KUBERNETES} or later"
    return chosen


def test_kustomization_lists_every_manifest() -> None:
    files = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization()["resources"]) == files
    namespaces = {doc["metadata"].get("namespace") for _, doc in documents()
                  if doc["kind"] != "Namespace"}
    # every file names the namespace itself (kubectl apply -f; checkov's default-namespace
    # check), the same as kustomization.yaml and namespace.yaml
    assert namespaces == {kustomization()["namespace"]} == {the("Namespace")["metadata"]["name"]}
    assert {doc["kind"] for _, doc in documents()} >= {
        "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ConfigMap",
        "PersistentVolumeClaim"}


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    import kubernetes_validate

    versions = kubernetes_versions()
    for name, doc in documents():
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name} ({doc['kind']}) is invalid for Kubernetes {version}: "
                            f"{exc.message} at {'.'.join(map(str, exc.path))}")


def test_the_schema_check_catches_mistakes() -> None:
    """Strict validation rejects a misspelt field and a field the version lacks."""
    import kubernetes_validate

    doc = the("Deployment")
    bad = json.loads(json.dumps(doc))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = \
        bad["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_versions()[-1], strict=True)
    with pytest.raises(kubernetes_validate.ValidationError, match="sleep"):
        kubernetes_validate.validate(doc, "1.28", strict=True)  # no preStop sleep before 1.29


# -- checkov ---------------------------------------------------------------------------------
def find_checkov() -> str | None:
    """$TLGAN_CHECKOV, ./.venv-tools/bin/checkov (scripts/setup_tools.sh), the venv's, PATH."""
    candidates = [os.environ.get("TLGAN_CHECKOV", ""),
                  str(REPO / ".venv-tools" / "bin" / "checkov"), str(VENV_BIN / "checkov")]
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return shutil.which("checkov")


def test_checkov_finds_nothing() -> None:
    checkov = find_checkov()
    if checkov is None:
        reason = ("checkov is not installed: bash scripts/setup_tools.sh puts it in "
                  ".venv-tools (or set TLGAN_CHECKOV)")
        if os.environ.get("TLGAN_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{reason} (TLGAN_REQUIRE_TOOLS=1)")
        pytest.skip(reason)
    proc = subprocess.run(
        [checkov, "--directory", str(KUBE), "--framework", "kubernetes", "--skip-download",
         "--output", "json"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"})
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report (exit {proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['check_name']} ({c['file_path']}: {c['resource']})"
              for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and not failed, "\n".join(failed)
    assert summary["parsing_errors"] == 0, report["results"].get("parsing_errors")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # it saw every resource (it counts kustomization.yaml as one too), and ran its checks
    assert summary["resource_count"] >= len(documents())
    assert summary["passed"] >= 50
    skipped = {c["check_id"]: c["check_result"].get("suppress_comment", "")
               for c in report["results"]["skipped_checks"]}
    assert set(skipped) <= ALLOWED_SKIPS, f"new skips {set(skipped) - ALLOWED_SKIPS}: justify " \
        "them in the manifest and in ALLOWED_SKIPS"
    for check, why in skipped.items():
        assert len(why) > 40 and why != "No comment provided", f"{check} skipped without reason"


# -- agreement with the app ------------------------------------------------------------------
def set_pod_env(monkeypatch: pytest.MonkeyPatch, **extra: str) -> Settings:
    """Settings read from the ConfigMap's variables (plus ``extra``), as in the pod."""
    for key, value in {**config(), **extra}.items():
        monkeypatch.setenv(key, value)
    return Settings()


@pytest.fixture
def pod_app(tiny_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[Callable[..., TestClient]]:
    """Factory: a started TestClient on the tiny pipeline with the pod's settings, plus
    TLGAN_* variables given as keywords."""
    clients: list[TestClient] = []

    def make(**extra: str) -> TestClient:
        client = TestClient(create_app(set_pod_env(monkeypatch, **extra),
                                       pipeline=tiny_pipeline))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_configmap_holds_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    pod_settings = set_pod_env(monkeypatch)
    names = {f"TLGAN_{field.upper()}" for field in Settings.model_fields}
    data = config()
    assert set(data) <= names, f"not settings: {set(data) - names}"
    # the host is the image's ENTRYPOINT's (--host 0.0.0.0), the key comes from a Secret
    assert names - set(data) == {"TLGAN_HOST", "TLGAN_API_KEY"}
    assert all(isinstance(v, str) for v in data.values())
    # every value parses (the fixture built Settings from them) and means what it says
    assert pod_settings.device.startswith("cuda") and pod_settings.metrics
    for artifact in (pod_settings.generator, pod_settings.extractor, pod_settings.bundle):
        assert artifact is None or artifact == "none" or artifact.startswith("/models/")
    # the key: only from the optional Secret
    env = {e["name"]: e for e in container()["env"]}
    ref = env["TLGAN_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref["optional"] is True and ref["name"] and ref["key"]
    assert container()["envFrom"] == [{"configMapRef": {"name": the("ConfigMap")["metadata"]
                                                        ["name"]}}]


def test_probes_are_the_apps_and_public(pod_app: Callable[..., TestClient]) -> None:
    """The probes' paths answer 200 on a ready app (even with an API key set: kubelet sends
    none), liveness stays 200 while draining (a draining pod must not be killed) and
    readiness turns 503 then."""
    found = probes()
    assert set(found) == {"startupProbe", "livenessProbe", "readinessProbe"}
    assert found["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert found["readinessProbe"]["httpGet"]["path"] == "/readyz"
    client = pod_app(TLGAN_API_KEY="k8s-secret")
    for kind, probe in found.items():
        assert client.get(probe["httpGet"]["path"]).status_code == 200, kind
    assert client.post("/generate", json={"seed": 1}).status_code == 401  # the key works
    cast(Any, client.app).state.draining = True  # what SIGTERM sets in `tlgan serve`
    assert client.get(found["livenessProbe"]["httpGet"]["path"]).status_code == 200
    assert client.get(found["startupProbe"]["httpGet"]["path"]).status_code == 200
    assert client.get(found["readinessProbe"]["httpGet"]["path"]).status_code == 503
    assert client.post("/generate", json={"seed": 1}).status_code == 503  # new work: away


def test_ports_agree_with_tlgan_port() -> None:
    port = int(config()["TLGAN_PORT"])
    assert [p["containerPort"] for p in container()["ports"]] == [port]
    for kind, probe in probes().items():
        assert container_port(probe["httpGet"]["port"]) == port, kind
    service = the("Service")["spec"]["ports"]
    assert [container_port(p["targetPort"]) for p in service] == [port]
    assert int(pod()["metadata"]["annotations"]["prometheus.io/port"]) == port
    policy = the("NetworkPolicy")["spec"]["ingress"]
    assert [container_port(p["port"]) for rule in policy for p in rule["ports"]] == [port]
    # no Service variables: a Service named tlgan would inject TLGAN_PORT=tcp://...
    assert pod()["spec"]["enableServiceLinks"] is False


def prestop_seconds() -> int:
    """The preStop pause: the native sleep action or an exec of `sleep N`."""
    hook = container()["lifecycle"]["preStop"]
    if "sleep" in hook:
        return int(hook["sleep"]["seconds"])
    argv = hook["exec"]["command"]
    assert Path(argv[0]).name == "sleep", argv
    return int(argv[1])


def test_termination_outlasts_the_drain() -> None:
    """Kubelet's SIGKILL comes terminationGracePeriodSeconds after the preStop hook starts:
    it must cover the pause, TLGAN_GRACEFUL_TIMEOUT, and the queue drain after it."""
    pause = prestop_seconds()
    drain = int(config()["TLGAN_GRACEFUL_TIMEOUT"])
    grace = int(pod()["spec"]["terminationGracePeriodSeconds"])
    assert pause >= 5, "too short for endpoints to be updated before SIGTERM"
    assert grace > pause + drain
    assert grace - (pause + drain) >= 10, "leave time for the queue drain and CUDA teardown"


def test_autoscaler_metric_is_exported_and_served(pod_app: Callable[..., TestClient]) -> None:
    hpa = the("HorizontalPodAutoscaler")["spec"]
    deployment = the("Deployment")
    assert hpa["scaleTargetRef"] == {"apiVersion": deployment["apiVersion"],
                                     "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    pods = [m["pods"] for m in hpa["metrics"] if m["type"] == "Pods"]
    resources = [m["resource"]["name"] for m in hpa["metrics"] if m["type"] == "Resource"]
    assert len(pods) == 1 and "cpu" in resources  # CPU: the fallback
    name = pods[0]["metric"]["name"]
    target = pods[0]["target"]
    assert target["type"] == "AverageValue"
    assert 0 < float(target["averageValue"]) < int(config()["TLGAN_QUEUE_SIZE"])
    # the app's /metrics has it, as a gauge
    text = pod_app().get("/metrics").text
    assert f"# TYPE {name} gauge" in text
    assert re.search(rf"^{name} \d", text, re.M), text
    # prometheus-adapter's rule selects that series and serves it under that name
    rules = yaml.safe_load(ADAPTER.read_text())["rules"]["custom"]
    served = [r for r in rules if r["name"]["as"] == name]
    assert len(served) == 1
    assert served[0]["seriesQuery"].startswith(f"{name}{{")
    assert re.fullmatch(served[0]["name"]["matches"], name)
    assert set(served[0]["resources"]["overrides"]) == {"namespace", "pod"}
    # the HPA owns the replica count; a drain (PDB) leaves at least one replica serving
    assert "replicas" not in deployment["spec"]
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert the("PodDisruptionBudget")["spec"]["maxUnavailable"] < hpa["minReplicas"]


def test_selectors_select_the_pods() -> None:
    deployment = the("Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = pod()["metadata"]["labels"]
    assert selector and selector.items() <= labels.items()
    assert the("Service")["spec"]["selector"] == selector
    assert the("PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert the("NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == selector
    for spread in pod()["spec"]["topologySpreadConstraints"]:
        assert spread["labelSelector"]["matchLabels"] == selector
    # what the pod refers to exists
    assert pod()["spec"]["serviceAccountName"] == the("ServiceAccount")["metadata"]["name"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod()["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    assert claims == [the("PersistentVolumeClaim")["metadata"]["name"]]


def image_user() -> int:
    """The uid of the Dockerfile's USER."""
    users = re.findall(r"^USER\s+(\d+)", (REPO / "docker" / "Dockerfile").read_text(), re.M)
    assert users, "the Dockerfile has no numeric USER"
    return int(users[-1])


def test_pod_is_locked_down() -> None:
    spec = pod()["spec"]
    uid = image_user()
    for ctx in (spec["securityContext"], container()["securityContext"]):
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == uid
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container()["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    assert the("ServiceAccount")["automountServiceAccountToken"] is False
    assert "@sha256:" in container()["image"], "pin the image by digest"


def test_only_tmp_is_writable_and_models_come_from_a_volume() -> None:
    volumes = {v["name"]: v for v in pod()["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    assert set(mounts) == {"/models", WRITABLE}
    models = mounts["/models"]
    assert models["readOnly"] is True
    assert volumes[models["name"]]["persistentVolumeClaim"]["readOnly"] is True
    assert "emptyDir" in volumes[mounts[WRITABLE]["name"]]
    assert set(the("PersistentVolumeClaim")["spec"]["accessModes"]) <= {"ReadOnlyMany",
                                                                        "ReadWriteMany"}
    # everything that writes caches (Python, matplotlib, torch, CUDA, Triton) writes to /tmp:
    # the pod's environment overrides the image's HOME=/home/tlgan, and the image's own
    # cache settings (MPLCONFIGDIR) point there too
    env = {e["name"]: e.get("value") for e in container()["env"]}
    for name in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "MPLCONFIGDIR", "TORCH_HOME",
                 "CUDA_CACHE_PATH", "TRITON_CACHE_DIR"):
        value = env.get(name)
        assert value and (value == WRITABLE or value.startswith(WRITABLE + "/")), name
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    for key, value in re.findall(r"\b(\w+(?:DIR|HOME|PATH))=(\S+)", dockerfile):
        if key not in env and value.startswith("/") and key not in ("PATH", "VIRTUAL_ENV"):
            assert value.startswith(WRITABLE + "/"), f"image's {key}={value} is read-only"


def test_gpu_pool_and_resources() -> None:
    resources = container()["resources"]
    requests, limits = resources["requests"], resources["limits"]
    assert limits["nvidia.com/gpu"] == requests["nvidia.com/gpu"] == 1
    for key in ("cpu", "memory"):
        assert key in requests and key in limits
    cpu_limit = float(limits["cpu"])
    assert float(requests["cpu"]) <= cpu_limit
    # torch threads: set (0 would mean the node's cores) and below the CPU limit, leaving a
    # core for HTTP and image encoding
    threads = int(config()["TLGAN_TORCH_THREADS"])
    assert 1 <= threads <= max(1, int(cpu_limit) - 1)
    spec = pod()["spec"]
    assert spec["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule"
               for t in spec["tolerations"])


def test_readme_numbers_are_the_manifests() -> None:
    """deploy/README.md quotes the defaults: they must be the manifests' values."""
    text = (DEPLOY / "README.md").read_text()
    hpa = the("HorizontalPodAutoscaler")["spec"]
    queue = [m["pods"]["target"]["averageValue"] for m in hpa["metrics"] if m["type"] == "Pods"]
    cpu = [m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]
           if m["type"] == "Resource"]
    data = config()

    def row(knob: str) -> str:
        found = [line for line in text.splitlines() if line.startswith(f"| {knob} |")]
        assert len(found) == 1, f"deploy/README.md has no scaling-knob row {knob!r}"
        return found[0].split("|")[3].strip()

    assert row("replicas") == f"{hpa['minReplicas']} / {hpa['maxReplicas']}"
    assert row("target queue depth") == str(queue[0])
    assert row("CPU fallback").startswith(f"{cpu[0]} %")
    assert row("faces per forward pass") == data["TLGAN_MAX_BATCH"]
    assert row("queue per pod") == data["TLGAN_QUEUE_SIZE"]
    assert row("CPU threads") == data["TLGAN_TORCH_THREADS"]
    assert row("GPU per pod") == str(container()["resources"]["limits"]["nvidia.com/gpu"])
    assert row("disruption budget") == str(the("PodDisruptionBudget")["spec"]["maxUnavailable"])
    grace = pod()["spec"]["terminationGracePeriodSeconds"]
    assert (f"`terminationGracePeriodSeconds` ({grace}) must stay above preStop "
            f"({prestop_seconds()}) + `TLGAN_GRACEFUL_TIMEOUT` "
            f"({data['TLGAN_GRACEFUL_TIMEOUT']})") in " ".join(text.split())
