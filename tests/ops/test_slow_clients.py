"""Slow clients against the real server process (#24): connections that send nothing, or
trickle their headers or body, are closed in time; normal requests are unaffected."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from ops_helpers import StartServer

#: the deadlines the server runs with here, and the slack allowed on a loaded machine
KEEP_ALIVE, HEADERS, BODY, SLACK = 2, 1.0, 1.5, 4.0


def _closed_after(conn: socket.socket, trickle: bytes = b"", every: float = 0.2,
                  limit: float = 30.0) -> tuple[bytes, float]:
    """Send ``trickle`` one byte every ``every`` seconds (none: stay silent) until the server
    closes the connection; returns what it answered and the seconds it took."""
    conn.settimeout(every)
    t0 = time.monotonic()
    answer, i = b"", 0
    while time.monotonic() - t0 < limit:
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            if trickle:
                try:
                    conn.send(trickle[i % len(trickle):i % len(trickle) + 1])
                except OSError:  # reset: the server closed it
                    break
                i += 1
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        answer += chunk
    return answer, time.monotonic() - t0


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.slow
def test_silent_and_trickling_connections_are_closed_in_time(
        start_server: StartServer) -> None:
    server = start_server(TLGAN_EXTRACTOR="none", TLGAN_BUNDLE="none",
                          TLGAN_KEEP_ALIVE=str(KEEP_ALIVE), TLGAN_HEADER_TIMEOUT=str(HEADERS),
                          TLGAN_BODY_TIMEOUT=str(BODY))
    addr = ("127.0.0.1", server.port)
    # silent from the start: closed like an idle keep-alive connection
    with socket.create_connection(addr) as conn:
        answer, took = _closed_after(conn)
    assert answer == b"" and KEEP_ALIVE - 0.5 <= took <= KEEP_ALIVE + SLACK, took
    # headers trickled a byte at a time: 408 naming headers, then closed
    with socket.create_connection(addr) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\n")
        answer, took = _closed_after(conn, trickle=b"X-Slow: abcdefgh\r\n")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    detail = json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"]
    assert detail.startswith("headers: the request's headers did not arrive within 1 s")
    assert took <= HEADERS + SLACK, took
    # a body trickled after prompt headers: 408 naming body, then closed
    with socket.create_connection(addr) as conn:
        conn.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 200\r\n\r\n{\"seed\": ")
        answer, took = _closed_after(conn, trickle=b"1")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"body: the request's body did not arrive within 1.5 s" in answer
    assert took <= BODY + SLACK, took
    # normal requests still work, several on one keep-alive connection
    with socket.create_connection(addr, timeout=30) as conn:
        for _ in range(3):
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"}" not in head:
                head += conn.recv(4096)
            assert head.startswith(b"HTTP/1.1 200 "), head
        body = json.dumps({"seed": 1, "with_features": False}).encode()
        conn.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\n\r\n" + body)
        answer, _ = _closed_after(conn)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert server.proc.poll() is None and "Traceback" not in server.stderr


@pytest.mark.slow
def test_slow_clients_give_their_file_descriptors_back(start_server: StartServer) -> None:
    server = start_server(TLGAN_EXTRACTOR="none", TLGAN_BUNDLE="none",
                          TLGAN_KEEP_ALIVE=str(KEEP_ALIVE), TLGAN_HEADER_TIMEOUT=str(HEADERS))
    pid = server.proc.pid
    before = _open_fds(pid)
    conns = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(60)]
    for i, conn in enumerate(conns):
        if i % 2:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost")  # headers that never end
    time.sleep(0.5)
    assert _open_fds(pid) >= before + 50  # the server holds them ...
    deadline = time.monotonic() + KEEP_ALIVE + SLACK
    while _open_fds(pid) > before + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _open_fds(pid) - before
    for conn in conns:
        conn.close()
    assert left <= 2, f"{left} file descriptors still held"  # ... and lets them go
