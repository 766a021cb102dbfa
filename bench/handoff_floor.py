"""The least a synchronous durable hand-off can cost: a benchmark-only yardstick for `audit_load.py --floor`.

No audit logic at all. Each request, after its response is built, sends a fixed line of an entry's size to a
bare "echo" process over a Unix socket and waits for one byte; the echo process appends every line it has received
to a file, makes the file durable with one fdatasync per pass (group commit) and answers each line. That is the
smallest thing any design must do before a response may leave under the rule that its entry is durable first:
hand the bytes to something that can make them durable, and wait until it has.

    settings: bench.settings_handoff_floor (audit off, plus HandoffFloorMiddleware)
    echo:     python -m bench.handoff_floor SOCKET JOURNAL   (prints "listening" once ready)
"""

import os
import selectors
import socket
import sys
import threading
from collections.abc import Callable

LINE = b"{" + b'"x":"' + b"0" * 680 + b'"}\n'  # about the size of an encoded audit entry
SOCKET_ENV = "RAGSECURE_BENCH_HANDOFF_SOCKET"


class HandoffFloorMiddleware:
    """Per request: send LINE to the echo process and wait for its byte, on a connection of this thread's own."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.path = os.environ[SOCKET_ENV]
        self.local = threading.local()

    def __call__(self, request):
        response = self.get_response(request)
        sock = getattr(self.local, "sock", None)
        if sock is None:
            sock = self.local.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.path)
        sock.sendall(LINE)
        if sock.recv(1) != b"D":
            raise RuntimeError("the hand-off echo did not confirm")
        return response


def serve(path: str, journal: str) -> None:
    """Append, fdatasync once per pass, answer every line: group commit with nothing else."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    listener.bind(path)
    listener.listen(1024)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    handle = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    buffers: dict[socket.socket, bytearray] = {}
    print("listening", flush=True)
    while True:
        ready: list[tuple[socket.socket, int]] = []
        received: list[bytes] = []
        for key, _ in selector.select(1.0):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                buffers[conn] = bytearray()
                selector.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj
            chunk = conn.recv(1 << 16)
            if not chunk:
                selector.unregister(conn)
                buffers.pop(conn, None)
                conn.close()
                continue
            buffer = buffers[conn]
            buffer += chunk
            lines = buffer.count(b"\n")
            if lines:
                cut = buffer.rindex(b"\n") + 1
                received.append(bytes(buffer[:cut]))
                del buffer[:cut]
                ready.append((conn, lines))
        if ready:
            os.write(handle, b"".join(received))
            os.fdatasync(handle)
            for conn, lines in ready:
                conn.send(b"D" * lines)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
