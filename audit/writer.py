"""The host audit writer: one process stores the entries of every worker on the host in shared commits.

Group commit inside a worker only gathers that worker's concurrent requests,
so with several workers most commits carry one entry, and a commit (not the
row) is what the database pays for. The writer (`manage.py audit_writer`)
listens on a Unix socket; a worker seals its entry as before (its own chain),
sends it as one JSON line and waits for one status byte:

    D  stored in the database        S  fsynced to the spool        E  neither

The writer replies only after the COMMIT (or the spool's fsync), so an entry is
durable before its request's response leaves, exactly as on the direct path.
While one commit runs, the next entries queue in the socket buffers and go
into the next commit together; while requests overlap, the writer also waits
`gather_seconds` (the command's --gather-ms, 4 ms) for more entries before
it commits (one sleep, not a wake-up per arriving entry), as PostgreSQL's commit_delay does for its own commits, and
a client sending one request after another never waits. After replying (so a moment after the
response may have left), the writer also writes the entries to the
JSON-lines stream. Entries are inserted with `ON CONFLICT (id) DO NOTHING`:
an entry a worker gave up waiting for and then wrote itself is stored once.

A worker that cannot reach the writer (not configured, not running, timed out,
or answered E) writes the entry itself through the in-process group committer,
and retries the writer after AUDIT_WRITER_RETRY_SECONDS.
"""

import functools
import json
import logging
import os
import selectors
import socket
import stat
import struct
import threading
import time
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, DatabaseError, DataError, IntegrityError, connection, connections

from audit.spool import AuditUnavailable, spool_append
from ragsecure.conf import ragsecure_settings

logger = logging.getLogger("ragsecure.audit")
stream = logging.getLogger("ragsecure.audit.stream")

STORED, SPOOLED, FAILED = b"D", b"S", b"E"
MAX_LINE_BYTES = 4 * 1024 * 1024  # an entry is bounded far below this (paths, prompts and detail are truncated)
# Unix socket paths are limited to 108 bytes (104 on some systems) including the terminating NUL.
MAX_SOCKET_PATH_BYTES = 100


class WriterClient:
    """A worker's side: one connection per thread, one entry in flight on each."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._retry_at = 0.0

    def write(self, line: str) -> bool | None:
        """Send one entry line: True when the writer stored it in the database, False when it spooled it,
        None when the caller must write it itself (no writer configured or reachable, or the writer failed)."""
        path = ragsecure_settings.AUDIT_WRITER_SOCKET
        if not path or time.monotonic() < self._retry_at or self._database().in_atomic_block:
            # Inside a caller's transaction the entry commits (or rolls back) with it, as on the direct path.
            return None
        try:
            sock = self._connection(path)
            sock.sendall((line + "\n").encode("ascii"))
            status = sock.recv(1)
        except (OSError, UnicodeEncodeError) as exc:
            self._give_up(f"{type(exc).__name__}: {exc}")
            return None
        if status == STORED:
            return True
        if status == SPOOLED:
            return False
        self._give_up("the writer could not store the entry" if status == FAILED else "the writer closed the connection")
        return None

    def _database(self):
        """This thread's database connection (looked up once: Django's per-thread lookup costs more than the check)."""
        database = getattr(self._local, "database", None)
        if database is None:
            database = self._local.database = connections[DEFAULT_DB_ALIAS]
        return database

    def _connection(self, path: str) -> socket.socket:
        current = getattr(self._local, "connection", None)
        if current is not None and current[0] == (path, os.getpid()):
            return current[1]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        timeout = float(ragsecure_settings.AUDIT_WRITER_TIMEOUT)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        # Blocking calls with the kernel's own time limits: a send and a receive are one system call each (a
        # Python-level timeout polls before each). A call that runs out of time fails with EAGAIN (an OSError).
        try:
            seconds, fraction = divmod(max(timeout, 0.001), 1.0)
            limit = struct.pack("ll", int(seconds), int(fraction * 1_000_000))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
            sock.settimeout(None)
        except OSError:
            pass  # a platform whose timeval is not two longs: keep Python's own timeout
        self._local.connection = ((path, os.getpid()), sock)
        return sock

    def _give_up(self, reason: str) -> None:
        """Drop this thread's connection (its reply stream may be out of step) and write directly for a while."""
        self.close()
        self._retry_at = time.monotonic() + float(ragsecure_settings.AUDIT_WRITER_RETRY_SECONDS)
        logger.warning("audit writer unavailable (%s): entries are written by this process", reason)

    def close(self) -> None:
        """Close this thread's connection to the writer, if it has one."""
        current = getattr(self._local, "connection", None)
        self._local.connection = None
        if current is not None:
            current[1].close()


writer_client = WriterClient()


# ---------------------------------------------------------------------------
# The writer process
# ---------------------------------------------------------------------------


def store_lines(lines: list[bytes]) -> bytes:
    """Store entry lines in one statement; the status byte of each line (D, S or E), in order."""
    try:
        _insert_lines(lines)
        return STORED * len(lines)
    except (DataError, IntegrityError):
        if len(lines) > 1:  # one bad line must not send the others to the spool
            return b"".join(store_lines([line]) for line in lines)
    except DatabaseError:
        connection.close()  # the next batch reconnects
    return bytes(_spool_line(line) for line in lines)


def _spool_line(line: bytes) -> int:
    from audit.commit import entry_from_document

    try:
        spool_append(entry_from_document(json.loads(line)))
    except (ValueError, TypeError, AttributeError, AuditUnavailable) as exc:
        logger.critical("audit entry neither stored nor spooled by the writer (%s)", exc)
        return FAILED[0]
    return SPOOLED[0]


def _insert_lines(lines: list[bytes]) -> None:
    from audit.commit import entry_from_document, insert_entries

    if connection.vendor == "postgresql":
        # The lines go to the server as one JSON array and become rows there: no per-value work in Python.
        try:
            entries = (b"[" + b",".join(lines) + b"]").decode("ascii")  # entry lines are ASCII JSON
        except UnicodeDecodeError:
            raise DataError("not an audit entry line (non-ASCII)") from None
        _insert_json(entries)
        return
    try:
        entries = [entry_from_document(json.loads(line)) for line in lines]
    except (ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"not an audit entry line ({type(exc).__name__})") from None
    insert_entries(entries, ignore_existing=True)


_prepare = True  # until the server shows it cannot keep prepared statements (a pooler in transaction mode)


def _insert_json(entries: str) -> None:
    """Run the JSON insert, prepared once per connection: the writer runs this one statement all day, and planning it
    again for every commit costs the database more than the rows do (Django leaves preparing off)."""
    global _prepare
    from audit.commit import server_cursor

    try:
        with server_cursor() as cursor:
            cursor.connection.prepare_threshold = 1 if _prepare else None
            cursor.execute(_json_insert_sql(), [entries])
    except DatabaseError as exc:
        # The server does not keep this session's prepared statements (PgBouncer in transaction mode, say): the
        # statement is gone (26000) or another session already holds its name (42P05). Plan every insert from now on.
        if not _prepare or getattr(exc.__cause__, "sqlstate", None) not in ("26000", "42P05"):
            raise
        _prepare = False
        logger.warning("audit writer: the database does not keep prepared statements; planning each insert")
        connection.close()
        _insert_json(entries)


@functools.cache
def _json_insert_sql() -> str:
    """INSERT ... SELECT from a JSON array of entries (PostgreSQL); keys other than the columns are ignored."""
    from audit.commit import sealed_fields
    from audit.models import AuditEntry

    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in sealed_fields())
    table = quote(AuditEntry._meta.db_table)
    # Only the model's own quoted identifiers are formatted in; the entries are one bound parameter.
    return (
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s::json) "  # noqa: S608
        "ON CONFLICT (id) DO NOTHING"
    )


class AuditWriterServer:
    """Accepts worker connections on a Unix socket; each loop stores every complete line received in one commit."""

    def __init__(self, path: str | Path, *, max_batch: int = 500, gather_seconds: float = 0.0) -> None:
        self.path = Path(path)
        self.max_batch = max_batch
        self.gather_seconds = gather_seconds
        self._concurrent = False  # whether the last commit carried entries of more than one request
        self.stopped = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._buffers: dict[socket.socket, bytearray] = {}
        self._listener: socket.socket | None = None
        self.batches = self.entries = 0

    def bind(self) -> None:
        """Listen on the socket path (owner-only; a stale socket from a previous run is replaced, any other file is not)."""
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH_BYTES:
            raise ValueError(f"socket path longer than {MAX_SOCKET_PATH_BYTES} bytes: {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise ValueError(f"{self.path} exists and is not a socket")
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(previous)
        listener.listen(1024)
        listener.setblocking(False)
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ)

    def serve(self) -> None:
        """Store entries until `stopped` is set, then close the socket."""
        if self._listener is None:
            self.bind()
        try:
            while not self.stopped.is_set():
                self.step(timeout=0.2)
        finally:
            self.close()

    def step(self, timeout: float) -> int:
        """Wait up to `timeout` for input, then store every complete line received; returns how many."""
        pending: list[tuple[socket.socket, bytes]] = []
        self._receive(timeout, pending)
        if pending and self.gather_seconds and self._concurrent and len(pending) < self.max_batch:
            # Requests are overlapping: wait up to the gathering time for more entries to share this commit.
            # A lone client (one request after another) never waits: its commits carry one entry each.
            # One sleep, then one look at every connection: waking for each arriving entry costs more than it saves.
            time.sleep(self.gather_seconds)
            self._receive(0, pending)
        if pending:
            self._concurrent = len(pending) > 1
        for start in range(0, len(pending), self.max_batch):
            self._store(pending[start : start + self.max_batch])
        return len(pending)

    def _receive(self, timeout: float, pending: list[tuple[socket.socket, bytes]]) -> None:
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._listener:
                self._accept()
            else:
                self._read(key.fileobj, pending)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: the waiting workers write directly meanwhile
                logger.error("audit writer: cannot accept a connection (%s)", exc)
                time.sleep(0.05)  # the listener stays readable: do not spin on it
                return
            conn.setblocking(False)
            self._buffers[conn] = bytearray()
            self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket, pending: list[tuple[socket.socket, bytes]]) -> None:
        try:
            data = conn.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buffer = self._buffers[conn]
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            pending.append((conn, bytes(buffer[start:end])))
            start = end + 1
        del buffer[:start]
        if len(buffer) > MAX_LINE_BYTES:
            logger.error("audit writer: a client sent a line over %s bytes; connection dropped", MAX_LINE_BYTES)
            self._drop(conn)

    def _store(self, batch: list[tuple[socket.socket, bytes]]) -> None:
        lines = [line for _, line in batch]
        try:
            statuses = store_lines(lines)
        except Exception:  # noqa: BLE001 - the writer serves every worker: it must outlive any one batch
            logger.exception("audit writer: a batch of %s entries failed", len(lines))
            statuses = FAILED * len(lines)
        self.batches += 1
        self.entries += len(lines)
        # Replies first (the entries are durable now; the workers are waiting), then the stream copy.
        for (conn, _), status in zip(batch, statuses, strict=True):
            if conn in self._buffers:
                try:
                    conn.send(bytes((status,)))
                except OSError:
                    self._drop(conn)
        if stream.isEnabledFor(logging.INFO):
            for line, status in zip(lines, statuses, strict=True):
                if status != FAILED[0]:
                    stream.info(line.decode("ascii", errors="replace"))

    def _drop(self, conn: socket.socket) -> None:
        if self._buffers.pop(conn, None) is not None:
            self._selector.unregister(conn)
        conn.close()

    def close(self) -> None:
        for conn in list(self._buffers):
            self._drop(conn)
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self._selector.close()
