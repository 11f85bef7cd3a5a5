"""Faults against the real server process: SIGTERM drain, a full queue, bad artifacts."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from ops_helpers import VENV_BIN, StartServer, TinyArtifacts, clean_env
from prometheus_client.parser import text_string_to_metric_families

from tlgan.generators import DEFAULT


def metric(url: str, name: str, **labels: str) -> float:
    """One sample's value from the server's /metrics (0.0 when absent)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return float(sample.value)
    return 0.0


Result = httpx.Response | Exception


def post_many(url: str, n: int, body: dict[str, object]
              ) -> tuple[list[Result], list[threading.Thread]]:
    """Start ``n`` concurrent POST /generate (one connection each) in threads; returns the
    list the threads fill and the threads."""
    results: list[Result] = [RuntimeError("no answer")] * n

    def one(i: int) -> None:
        try:
            results[i] = httpx.post(f"{url}/generate", json=body, timeout=120)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return results, threads


SLOW: dict[str, object] = {"seed": 1, "count": 64, "with_features": False}  # 64 faces


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests(start_server: StartServer) -> None:
    """Requests in flight (running or queued in the batcher) when SIGTERM arrives all get
    their 200; during the drain /readyz answers 503, /healthz 200 and new work 503 +
    Retry-After; the process exits 0 with a clean last line."""
    # all six admitted whatever this machine's measured speed (the drain is tested here)
    server = start_server(TLGAN_EXTRACTOR="none", TLGAN_BUNDLE="none",
                          TLGAN_MAX_QUEUE_SECONDS="3600", TLGAN_MAX_MEMORY_MB="65536")
    n = 6
    results, threads = post_many(server.url, n, SLOW)
    deadline = time.monotonic() + 30
    while metric(server.url, "tlgan_requests_in_flight") < n + 1:  # + this scrape
        assert time.monotonic() < deadline, "the requests never were in flight together"
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    still_running = sum(t.is_alive() for t in threads)
    ready = httpx.get(f"{server.url}/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json() == {"status": "draining"}
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
    late = httpx.post(f"{server.url}/generate", json={"seed": 1}, timeout=5)
    assert late.status_code == 503 and late.headers["retry-after"] == "1"
    assert "shutting down" in late.json()["detail"]
    for t in threads:
        t.join(120)
    assert server.proc.wait(60) == 0, server.stderr
    statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
    assert statuses == [200] * n, statuses
    assert all(len(r.json()["faces"]) == 64 for r in results if isinstance(r, httpx.Response))
    assert still_running > 0, "all requests finished before the probes (too fast?)"
    lines = [ln for ln in server.stderr.splitlines() if ln.strip()]
    assert "shutdown complete: batcher drained" in lines[-1], server.stderr
    assert "Traceback" not in server.stderr
    with pytest.raises(httpx.ConnectError):  # drained: the listener is closed
        httpx.get(f"{server.url}/healthz", timeout=5)


@pytest.mark.slow
def test_requests_still_running_after_the_grace_get_json_503(
        start_server: StartServer) -> None:
    """When the graceful timeout ends, what still runs is answered JSON 503 + Retry-After,
    logged in one line each; no text/plain 500, no CancelledError traceback; exit 0."""
    # admission would (rightly) refuse most of this burst at once: let it all in, the drain
    # is what is tested here
    server = start_server(TLGAN_EXTRACTOR="none", TLGAN_BUNDLE="none",
                          TLGAN_GRACEFUL_TIMEOUT="1", TLGAN_MAX_QUEUE_SECONDS="3600",
                          TLGAN_MAX_MEMORY_MB="65536")
    n = 40  # about 40 x 64 faces: far more than 1 s + 1 s of work
    results, threads = post_many(server.url, n, SLOW)
    deadline = time.monotonic() + 30
    while metric(server.url, "tlgan_requests_in_flight") < n + 1:
        assert time.monotonic() < deadline, "the requests never were in flight together"
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(120)
    assert server.proc.wait(60) == 0, server.stderr
    answers = [r for r in results if isinstance(r, httpx.Response)]
    assert len(answers) == n, results
    cut = [r for r in answers if r.status_code == 503]
    assert cut and {r.status_code for r in answers} <= {200, 503}
    assert all(r.headers["content-type"] == "application/json" and
               r.headers["retry-after"] == "1" and "shutting down" in r.json()["detail"]
               for r in cut)
    assert "Traceback" not in server.stderr and "CancelledError" not in server.stderr
    warned = [ln for ln in server.stderr.splitlines()
              if "still running after the graceful timeout" in ln]
    assert len(warned) == len(cut)
    access = [json.loads(ln) for ln in server.stdout.splitlines() if ln.startswith("{")]
    assert sorted(a["status"] for a in access if a["path"] == "/generate") == sorted(
        r.status_code for r in answers)


@pytest.mark.slow
def test_a_busy_port_exits_2_with_one_line_before_loading_models() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        proc = subprocess.run([str(VENV_BIN / "tlgan"), "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=120,
                              env=clean_env(TLGAN_TORCH_THREADS="1"))
    line = _one_line(proc)
    assert line.startswith("Error: port (--port / TLGAN_PORT): cannot listen on 127.0.0.1:")
    assert "in use" in line
    assert "ready:" not in proc.stderr  # the models were never loaded
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_full_queue_answers_503_and_the_process_stays_up(start_server: StartServer) -> None:
    server = start_server(TLGAN_EXTRACTOR="none", TLGAN_BUNDLE="none", TLGAN_QUEUE_SIZE="1")
    n = 12
    results, threads = post_many(server.url, n, SLOW)
    for t in threads:
        t.join(120)
    answers = [r for r in results if isinstance(r, httpx.Response)]
    assert len(answers) == n, results
    busy = [r for r in answers if r.status_code == 503]
    assert busy, [r.status_code for r in answers]
    assert {r.status_code for r in answers} <= {200, 503}
    # Retry-After: the backlog (measured at the warm-up), within [1, max_queue_seconds]
    assert all(1 <= int(r.headers["retry-after"]) <= 30 and "server busy" in r.json()["detail"]
               for r in busy)
    # still up and serving
    assert server.proc.poll() is None
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    again = httpx.post(f"{server.url}/generate", json={"seed": 2, "with_features": False},
                       timeout=60)
    assert again.status_code == 200
    assert metric(server.url, "tlgan_queue_rejected_total") == len(busy)
    assert metric(server.url, "tlgan_errors_total", route="/generate",
                  status="503") == len(busy)
    assert server.stop() == 0, server.stderr


def _serve_fails(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "tlgan"), "serve", "--port", "0", *options],
                          capture_output=True, text=True, timeout=120,
                          env=clean_env(TLGAN_TORCH_THREADS="1"))


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


@pytest.mark.slow
def test_bundle_for_another_generator_exits_2_with_one_line(
        tiny_artifacts: TinyArtifacts) -> None:
    """The operator's bundle was fitted for another generator (and latent size)."""
    line = _one_line(_serve_fails("--extractor", "none", "--bundle",
                                  str(tiny_artifacts.bundle)))
    assert line.startswith("Error: bundle (--bundle / TLGAN_BUNDLE): axis bundle")
    assert "tiny-dcgan" in line
    assert DEFAULT in line  # the default generator, which is loaded


@pytest.mark.slow
def test_corrupt_bundle_exits_2_with_one_line(tiny_artifacts: TinyArtifacts,
                                              tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_artifacts.bundle, bundle)
    files = json.loads((bundle / "config.json").read_text())["files"]
    target = bundle / sorted(files)[0]
    target.write_bytes(target.read_bytes()[:-7] + b"garbage")
    line = _one_line(_serve_fails("--generator", str(tiny_artifacts.plugin), "--extractor",
                                  "none", "--bundle", str(bundle)))
    assert line.startswith("Error:") and str(bundle) in line


def _raw_request(port: int, head: bytes, chunk: int = 65_536) -> bytes:
    """Send ``head`` over a raw socket (as fast as the server takes it) and return what the
    server answered before closing."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        sent = 0
        try:
            while sent < len(head):
                sent += s.send(head[sent:sent + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection: the answer is below
        out = b""
        try:
            while block := s.recv(65_536):
                out += block
        except ConnectionResetError:
            pass
        return out


@pytest.mark.slow
def test_oversized_request_headers_get_431_and_the_connection_closed(
        start_server: StartServer) -> None:
    server = start_server(TLGAN_EXTRACTOR="none", TLGAN_BUNDLE="none",
                          TLGAN_MAX_HEADER_BYTES="16384")
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000_000 + b"\r\n\r\n"
    port = int(server.url.rsplit(":", 1)[1])
    answer = _raw_request(port, huge)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["detail"].startswith("headers: the request line and headers are larger than")
    # headers under the limit still work, on keep-alive connections too
    ok = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"b" * 8_000
          + b"\r\nConnection: close\r\n\r\n")
    assert _raw_request(port, ok).startswith(b"HTTP/1.1 200 ")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(3):
            assert client.get("/healthz", headers={"X-Ok": "c" * 10_000}).status_code == 200


@pytest.mark.slow
def test_idle_keep_alive_connections_outlive_uvicorns_5_s(start_server: StartServer) -> None:
    """TLGAN_KEEP_ALIVE (75 s) reaches uvicorn: a connection idle for 6 s still serves the
    next request (uvicorn's default of 5 s closed it, so a client sending just then got a
    read error)."""
    import socket

    server = start_server(TLGAN_EXTRACTOR="none", TLGAN_BUNDLE="none")
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    def response(conn: socket.socket) -> bytes:
        """One whole response (headers, then Content-Length bytes of body); b"" if closed."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += conn.recv(4096)
        return head

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(request)
        assert b" 200 " in response(conn)
        time.sleep(6)
        conn.sendall(request)
        assert b" 200 " in response(conn)
