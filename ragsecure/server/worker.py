"""A gunicorn thread worker that reads each request on its event loop before it takes a thread.

gunicorn's gthread worker hands a connection to a thread as soon as it is accepted (or readable),
and the thread then blocks until the client finishes its headers and body: a few clients that
never finish hold every thread, and nobody else is served. Here the worker's event loop reads
the request head, and a body up to a bound, without blocking; a thread gets the connection only
once its request is in memory. A client that does not finish in time is answered 408 and closed.
Whatever is not buffered (a body over the bound) is read by the thread under a per-read timeout,
so a stalled upload frees its thread within seconds.
"""

import errno
import json
import os
import selectors
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from functools import partial

from gunicorn.workers.gthread import TConn, ThreadWorker

from ragsecure.net import CLIENT_CERT_SUBJECT

_HEAD_END = b"\r\n\r\n"
_CHUNKED_END = b"0\r\n\r\n"
_READ_SIZE = 65536
_peer = threading.local()
_HEAD_MAX = 256 * 1024


@dataclass(frozen=True)
class IntakeLimits:
    """How long a client may take to send a request, and how much of it the event loop holds in memory."""

    header_timeout: float = 10.0  # from connecting (or the previous response) to the end of the head
    request_timeout: float = 60.0  # to the end of the buffered body
    read_timeout: float = 5.0  # each read a thread makes of a body past the buffer
    buffer_bytes: int = 4 * 1024 * 1024  # largest body read on the event loop
    buffer_total_bytes: int = 256 * 1024 * 1024  # all bodies one worker holds at once

    @classmethod
    def from_environment(cls) -> "IntakeLimits":
        """The defaults above, each overridable by RAGSECURE_SERVER_<NAME> (read when a worker starts)."""
        values = {}
        for name, default in cls().__dict__.items():
            raw = os.environ.get(f"RAGSECURE_SERVER_{name.upper()}", "").strip()
            values[name] = type(default)(raw) if raw else default
        return cls(**values)


class _Intake:
    """What one connection has sent of its next request so far."""

    __slots__ = ("buffer", "conn", "deadline", "head_deadline", "wanted")

    def __init__(self, conn, *, head_deadline: float, deadline: float) -> None:
        self.conn = conn
        self.buffer = bytearray()
        self.head_deadline = head_deadline
        self.deadline = deadline
        self.wanted: int | None = None  # bytes of head plus body to buffer, once the head is in


def _body_length(head: bytes) -> int | None:
    """Bytes of body the head announces: its Content-Length, -1 for a chunked body, None when unclear (left to the parser)."""
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return -1
        if name == b"content-length":
            value = value.strip()
            if not value.isdigit():
                return None
            length = int(value)
    return length


class BufferingThreadWorker(ThreadWorker):
    """gthread, with each request head and body (up to RAGSECURE_SERVER_BUFFER_BYTES) read on the event loop."""

    def init_process(self):
        self.limits = IntakeLimits.from_environment()
        self.intakes: dict[int, _Intake] = {}
        self.buffered_bytes = 0
        self.next_sweep = 0.0
        super().init_process()

    # -- TLS client certificates (mTLS) ----------------------------------------------------------------

    def load_wsgi(self):
        super().load_wsgi()
        application = self.wsgi

        def with_peer_certificate(environ, start_response):
            subject = getattr(_peer, "subject", None)
            if subject:
                environ[CLIENT_CERT_SUBJECT] = subject
            return application(environ, start_response)

        self.wsgi = with_peer_certificate

    def handle_request(self, req, conn):
        _peer.subject = certificate_subject(conn.sock) if self.cfg.is_ssl else None
        try:
            return super().handle_request(req, conn)
        finally:
            _peer.subject = None

    # -- connections enter through the intake ---------------------------------------------------------

    def accept(self, listener):
        if self.cfg.is_ssl:
            # TLS bytes cannot be buffered before the handshake: gthread's own path (terminate TLS in a proxy instead).
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        # A stalled body past the buffered part frees its thread after this long; set once per connection
        # (SO_RCVTIMEO survives the switches between blocking and non-blocking mode).
        seconds = self.limits.read_timeout
        client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(seconds), int(seconds % 1 * 1e6)))
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        self._intake(conn)

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection's next request goes through the intake too."""
        if self.cfg.is_ssl:
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._intake(conn)

    def _intake(self, conn) -> None:
        now = time.monotonic()
        intake = _Intake(conn, head_deadline=now + self.limits.header_timeout, deadline=now + self.limits.request_timeout)
        conn.sock.setblocking(False)
        self.intakes[conn.sock.fileno()] = intake
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_intake_readable, intake))

    def _on_intake_readable(self, intake: _Intake, client) -> None:
        try:
            data = intake.conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(intake)
            return
        intake.buffer += data
        self.buffered_bytes += len(data)
        if self._complete(intake):
            self._dispatch(intake)

    def _complete(self, intake: _Intake) -> bool:
        """Whether the thread can take over: the request is in memory, or it is past what the intake buffers."""
        limit = self.limits.buffer_bytes
        if intake.wanted is None:
            end = intake.buffer.find(_HEAD_END)
            if end < 0:
                # A head this long is the parser's to refuse (431 / 400), not ours to keep buffering.
                return len(intake.buffer) > _HEAD_MAX
            length = _body_length(bytes(intake.buffer[:end]))
            if length is None or length > limit:
                return True
            intake.wanted = end + len(_HEAD_END) + length if length >= 0 else -1
        if intake.wanted == -1:
            return intake.buffer.endswith(_CHUNKED_END) or len(intake.buffer) > limit
        if len(intake.buffer) >= intake.wanted:
            return True
        # Under memory pressure a request no longer waits here; the thread reads the rest under its timeout.
        return self.buffered_bytes > self.limits.buffer_total_bytes

    def _release(self, intake: _Intake) -> None:
        self.intakes.pop(intake.conn.sock.fileno(), None)
        self.buffered_bytes -= len(intake.buffer)
        try:
            self.poller.unregister(intake.conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _dispatch(self, intake: _Intake) -> None:
        self._release(intake)
        conn = intake.conn
        conn.sock.setblocking(True)
        conn.init()
        conn.parser.unreader.unread(bytes(intake.buffer))
        conn.data_ready = True
        self.enqueue_req(conn)

    def _drop(self, intake: _Intake, *, answer: bytes = b"") -> None:
        self._release(intake)
        if answer:
            try:
                intake.conn.sock.send(answer)
            except OSError:
                pass
        self.nr_conns -= 1
        intake.conn.close()

    def murder_pending(self):
        """Also close intakes past their deadline (head, or whole request), answering 408."""
        super().murder_pending()
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + 0.25
        for intake in list(self.intakes.values()):
            late = now > intake.deadline or (intake.wanted is None and now > intake.head_deadline)
            if late:
                # A connection that sent nothing is closed quietly (an idle pre-connect, or a kept-alive client gone).
                self._drop(intake, answer=_timeout_response() if intake.buffer else b"")


def _timeout_response() -> bytes:
    request_id = uuid.uuid4().hex
    body = json.dumps(
        {"error": {"code": "request_timeout", "message": "The request was not received in time.", "request_id": request_id}}
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"X-Request-ID: {request_id}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def certificate_subject(sock) -> str | None:
    """The verified peer certificate's subject as `CN=...,O=...` (RFC 4514 order reversed as OpenSSL lists it), or None."""
    try:
        certificate = sock.getpeercert()
    except (AttributeError, ValueError, OSError):
        return None
    if not certificate:
        return None
    parts = [f"{_SHORT_NAMES.get(name, name)}={value}" for rdn in certificate.get("subject", ()) for name, value in rdn]
    return ",".join(parts) or None


_SHORT_NAMES = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU", "countryName": "C",
                "localityName": "L", "stateOrProvinceName": "ST"}

