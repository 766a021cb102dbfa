"""A local OpenAI-compatible chat-completions server for tests, with switchable good and bad behaviours."""

import json
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

# What the server does for one request. Scripted ones are used in order, then DEFAULT for the rest.
ANSWER = "answer"  # 200, content = answer_text, usage included
ANSWER_WITHOUT_USAGE = "answer_without_usage"
ECHO_SYSTEM = "echo_system"  # 200, content = the system message it received
ERROR_500 = "error_500"
ERROR_400 = "error_400"
RATE_LIMITED = "rate_limited"  # 429 with Retry-After: retry_after
SLOW = "slow"  # waits slow_seconds before answering (beyond the client's read timeout)
MALFORMED_JSON = "malformed_json"
MISSING_CHOICES = "missing_choices"
CONTENT_NOT_STRING = "content_not_string"
BAD_USAGE = "bad_usage"  # usage with a negative count
DEEP_JSON = "deep_json"  # valid JSON nested deeper than a parser's recursion limit
HUGE_BODY = "huge_body"  # 2 MB of valid JSON, with Content-Length
HUGE_BODY_UNDECLARED = "huge_body_undeclared"  # 2 MB without Content-Length (read until close)
CLOSE = "close"  # closes the connection without answering
REDIRECT = "redirect"  # 307 to another URL of the same server
TRICKLE = "trickle"  # a valid answer sent a byte every trickle_seconds, so no single read ever times out
BEHAVIOURS = frozenset(
    {
        ANSWER,
        ANSWER_WITHOUT_USAGE,
        ECHO_SYSTEM,
        ERROR_500,
        ERROR_400,
        RATE_LIMITED,
        SLOW,
        MALFORMED_JSON,
        MISSING_CHOICES,
        CONTENT_NOT_STRING,
        BAD_USAGE,
        DEEP_JSON,
        HUGE_BODY,
        HUGE_BODY_UNDECLARED,
        CLOSE,
        REDIRECT,
        TRICKLE,
    }
)
HUGE_BYTES = 2 * 1024 * 1024
# Marks every error body, so tests can assert that upstream bodies never reach a message.
UPSTREAM_MARKER = "upstream-body-marker"


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: dict

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that give up (timeouts, size caps) reset their connections; that is the point of those tests.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeLLM:
    """The server's state: its URL, scripted behaviours and the requests it received."""

    def __init__(self) -> None:
        self.default = ANSWER
        self.answer_text = "Refunds are accepted within 30 days [1]."
        self.prompt_tokens = 123
        self.completion_tokens = 45
        self.retry_after = "1"
        self.slow_seconds = 2.0
        self.trickle_seconds = 0.05
        self.requests: list[ReceivedRequest] = []
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self.released = threading.Event()  # set at teardown so slow handlers stop waiting
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *behaviours: str) -> None:
        """Serve the next requests with these behaviours, in order, then `default`."""
        unknown = set(behaviours) - BEHAVIOURS
        assert not unknown, unknown
        with self._lock:
            self._script.extend(behaviours)

    def next_behaviour(self) -> str:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> "FakeLLM":
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def completion(self, content, *, usage: bool = True) -> dict:
        body = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        }
        if usage:
            body["usage"] = {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            }
        return body


def _handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            fake.record(ReceivedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path != "/v1/chat/completions":
                self._json(404, {"error": {"message": f"no route {UPSTREAM_MARKER}"}})
                return
            self._behave(fake.next_behaviour(), body)

        def _behave(self, behaviour: str, body: dict) -> None:
            if behaviour == ANSWER:
                self._json(200, fake.completion(fake.answer_text))
            elif behaviour == ANSWER_WITHOUT_USAGE:
                self._json(200, fake.completion(fake.answer_text, usage=False))
            elif behaviour == ECHO_SYSTEM:
                system = next((m.get("content", "") for m in body.get("messages", []) if m.get("role") == "system"), "")
                self._json(200, fake.completion(system))
            elif behaviour == ERROR_500:
                self._json(500, {"error": {"message": f"internal error {UPSTREAM_MARKER}"}})
            elif behaviour == ERROR_400:
                self._json(400, {"error": {"message": f"bad request {UPSTREAM_MARKER}"}})
            elif behaviour == RATE_LIMITED:
                self._json(429, {"error": {"message": f"slow down {UPSTREAM_MARKER}"}}, headers={"Retry-After": fake.retry_after})
            elif behaviour == SLOW:
                fake.released.wait(fake.slow_seconds)
                self._json(200, fake.completion(fake.answer_text))
            elif behaviour == MALFORMED_JSON:
                self._raw(200, f'{{"choices": [{{"message": {{"content": "{UPSTREAM_MARKER}'.encode())
            elif behaviour == MISSING_CHOICES:
                self._json(200, {"id": "x", "object": "chat.completion", "note": UPSTREAM_MARKER})
            elif behaviour == CONTENT_NOT_STRING:
                self._json(200, fake.completion({"text": UPSTREAM_MARKER}))
            elif behaviour == BAD_USAGE:
                reply = fake.completion(fake.answer_text)
                reply["usage"]["prompt_tokens"] = -1
                self._json(200, reply)
            elif behaviour == DEEP_JSON:
                self._raw(200, b"[" * 100_000 + b"]" * 100_000)
            elif behaviour == HUGE_BODY:
                self._json(200, fake.completion(UPSTREAM_MARKER + "x" * HUGE_BYTES))
            elif behaviour == HUGE_BODY_UNDECLARED:
                self._raw(200, json.dumps(fake.completion(UPSTREAM_MARKER + "x" * HUGE_BYTES)).encode(), declare_length=False)
            elif behaviour == REDIRECT:
                self._json(307, {"note": UPSTREAM_MARKER}, headers={"Location": "/v1/chat/completions?redirected=1"})
            elif behaviour == TRICKLE:
                data = json.dumps(fake.completion(fake.answer_text)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for byte in data:
                    if fake.released.wait(fake.trickle_seconds):
                        return
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return
            elif behaviour == CLOSE:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

        def _json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
            self._raw(status, json.dumps(body).encode(), headers=headers)

        def _raw(self, status: int, data: bytes, *, headers: dict[str, str] | None = None, declare_length: bool = True) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if declare_length:
                self.send_header("Content-Length", str(len(data)))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler


@pytest.fixture
def fake_llm():
    """A running FakeLLM on a free loopback port, stopped after the test."""
    server = FakeLLM().start()
    yield server
    server.stop()
