"""Run the image's ENTRYPOINT and HEALTHCHECK commands as written, and report what happened.

    python tests/ops/entrypoint_probe.py SPEC.json      # prints a JSON report on stdout

SPEC: ``{"entrypoint": [...], "healthcheck": [...], "env": {...}, "port": 8000,
"cwd": "...", "lo_up": true}``. Steps: (1) run the HEALTHCHECK command before the server
exists (must fail), (2) start the ENTRYPOINT command, (3) poll the HEALTHCHECK command until
it succeeds, (4) POST /generate and GET /metrics, (5) SIGTERM, wait for the exit code.

tests/ops/test_docker.py runs this inside a new network namespace (``unshare --net``) when
the machine allows it: the entrypoint binds 0.0.0.0 exactly as in the image, and there the
only interface is loopback. ``lo_up`` brings that interface up first.
"""

from __future__ import annotations

import fcntl
import json
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def bring_loopback_up() -> None:
    """``ip link set lo up`` without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def healthcheck(spec: dict[str, Any]) -> int:
    """Run the HEALTHCHECK command once; its exit code."""
    return subprocess.run(spec["healthcheck"], env=spec["env"], cwd=spec["cwd"],
                          capture_output=True, timeout=30).returncode


def main() -> None:
    """Run the steps; print the report."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    if spec.get("lo_up"):
        bring_loopback_up()
    url = f"http://127.0.0.1:{spec['port']}"
    logs = Path(spec["logs"])
    report: dict[str, Any] = {"healthcheck_before": healthcheck(spec)}
    with open(logs / "entrypoint.out", "wb") as out, open(logs / "entrypoint.err", "wb") as err:
        proc = subprocess.Popen(spec["entrypoint"], env=spec["env"], cwd=spec["cwd"],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            ready = False
            while time.monotonic() < deadline and proc.poll() is None:
                if healthcheck(spec) == 0:
                    ready = True
                    break
                time.sleep(0.3)
            report["ready"] = ready
            if ready:
                with httpx.Client(base_url=url, timeout=60) as client:
                    r = client.post("/generate", json={"seed": 7, "count": 2,
                                                       "with_features": False},
                                    headers={"X-Request-ID": "probe-1"})
                    report["generate_status"] = r.status_code
                    report["generate_faces"] = (len(r.json().get("faces", []))
                                                if r.status_code == 200 else r.text[:500])
                    report["generate_request_id"] = r.headers.get("x-request-id")
                    m = client.get("/metrics")
                    report["metrics_status"] = m.status_code
                    report["metrics_has_latency"] = (
                        'tlgan_request_duration_seconds_count{method="POST",route="/generate",'
                        'status="2xx"} 1.0' in m.text)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            report["exit_code"] = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
