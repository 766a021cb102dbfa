"""The application server under slow and stalling clients: plain `gunicorn ragsecure.wsgi` from the project root.

gunicorn.conf.py is what protects it, so the server here is started with no worker class of
its own, and with few threads, so that a handful of stalled connections would hold them all.
"""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live import live_server

pytestmark = pytest.mark.redis

THREADS = 2


@pytest.fixture(scope="module")
def live():
    with live_server(
        redis_database=7, gunicorn_args=("--workers", "1", "--threads", str(THREADS)),
        env={"RAGSECURE_SERVER_HEADER_TIMEOUT": "3", "RAGSECURE_SERVER_REQUEST_TIMEOUT": "6", "RAGSECURE_SERVER_READ_TIMEOUT": "2"},
    ) as server:
        yield server


def connect(live) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=10)
    return sock


def timed_health(live) -> float:
    started = time.monotonic()
    status, _, _ = live.request("GET", "/healthz", timeout=10)
    assert status == 200
    return time.monotonic() - started


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def test_half_open_connections_do_not_stall_the_service(live):
    """30 clients that never finish their headers: /healthz still answers within a second, every time."""
    stalled = [connect(live) for _ in range(30)]
    try:
        for sock in stalled:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        time.sleep(0.5)
        assert max(timed_health(live) for _ in range(5)) < 1.0
    finally:
        for sock in stalled:
            sock.close()


def test_silent_connections_do_not_stall_the_service(live):
    stalled = [connect(live) for _ in range(30)]
    try:
        time.sleep(0.5)
        assert max(timed_health(live) for _ in range(5)) < 1.0
    finally:
        for sock in stalled:
            sock.close()


def test_a_stalled_head_is_answered_408_in_the_error_shape_and_closed(live):
    sock = connect(live)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        started = time.monotonic()
        answer = read_all(sock)
        assert time.monotonic() - started < 6
    finally:
        sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout" and error["request_id"] in head.decode()


def test_a_body_one_byte_short_frees_its_thread_within_seconds(live):
    """Bodies a byte short of their Content-Length, more of them than threads: other requests are still served."""
    stalled = [connect(live) for _ in range(THREADS * 3)]
    try:
        for sock in stalled:
            sock.sendall(
                b"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n" + b"x" * 99
            )
        time.sleep(0.5)
        assert max(timed_health(live) for _ in range(5)) < 1.0
        started = time.monotonic()
        with ThreadPoolExecutor(len(stalled)) as pool:
            answers = list(pool.map(read_all, stalled))
        assert time.monotonic() - started < 8
        assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), [a[:40] for a in answers]
    finally:
        for sock in stalled:
            sock.close()


def test_a_trickled_head_cannot_outlast_the_deadline(live):
    """One byte a second keeps a connection readable but not finished: the head deadline still ends it."""
    sock = connect(live)
    try:
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 20:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.4)
            if time.monotonic() - started > 5:
                break
        answer = b"" if closed else read_all(sock)
        assert closed or answer.startswith(b"HTTP/1.1 408"), answer[:100]
        assert time.monotonic() - started < 8
    finally:
        sock.close()


def test_pipelined_and_kept_alive_requests_are_still_served(live):
    sock = connect(live)

    def responses(count: int) -> bytes:
        received = b""
        deadline = time.monotonic() + 5
        while received.count(b'{"status":"ok"}') < count and time.monotonic() < deadline:
            received += sock.recv(65536)
        return received

    try:
        request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
        sock.sendall(request * 3)
        assert responses(3).count(b"HTTP/1.1 200") == 3
        sock.sendall(request)
        assert responses(1).startswith(b"HTTP/1.1 200")
    finally:
        sock.close()


def test_a_large_body_arrives_whole(live):
    """A body larger than one read reaches the application intact (the intake buffers it, then hands it over)."""
    body = json.dumps({"username": "nobody", "password": "x" * 300_000}).encode()
    status, _, payload = live.request("POST", "/api/v1/auth/token/", {"Content-Type": "application/json"}, body)
    assert status in (400, 401), payload[:200]
    assert json.loads(payload)["error"]["code"] in ("validation_error", "authentication_failed")


def test_a_utf8_user_agent_reaches_the_audit_log_as_text(live):
    """Over real WSGI: the header's UTF-8 bytes are stored as the text they spell."""
    import sqlite3

    body = json.dumps({"username": "nobody", "password": "not-the-password-1"}).encode()
    sock = connect(live)
    try:
        sock.sendall(
            b"POST /api/v1/auth/token/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "User-Agent: Motörhead/1.0 日本語\r\n".encode()
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        )
        answer = read_all(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
    request_id = answer.split(b"X-Request-ID: ")[1].split(b"\r\n")[0].decode()
    with sqlite3.connect(f"{live.workdir}/db.sqlite3") as database:
        (agent,) = database.execute("SELECT user_agent FROM audit_auditentry WHERE request_id = ?", (request_id,)).fetchone()
    assert agent == "Motörhead/1.0 日本語"


def test_a_bad_host_is_told_so_over_http(live):
    status, headers, body = live.request("GET", "/healthz", {"Host": "evil.example"})
    assert status == 400
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request" and "Host header" in error["message"]
    assert error["request_id"] == headers["X-Request-ID"]
