"""The host audit writer: entries of many threads stored through one socket, durable before the reply, and a
writer that is missing, hung or failing never costs an entry."""

import io
import json
import logging
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client

from audit import chain
from audit.chain import audit_key
from audit.models import AuditEntry
from audit.services import audit_entry_write, audit_fields, stream_line
from audit.spool import spool_path
from audit.stream import stream_path
from audit.verify import audit_log_verify
from audit.writer import FAILED, SPOOLED, STORED, AuditWriterServer, store_lines, writer_client
from tests.audit.test_spool import entries_table_gone, replay, spooled
from tests.threads import run_threads

pytestmark = pytest.mark.database


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path (a Unix socket path has at most ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="rsw-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh_client(monkeypatch, settings):
    """No connection or back-off state carried over from another test; writer failures retried at once."""
    writer_client.close()
    monkeypatch.setattr(writer_client, "_retry_at", 0.0)
    monkeypatch.setattr(chain, "_writer", None)
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_WRITER_RETRY_SECONDS": 0.0, "AUDIT_WRITER_TIMEOUT": 5.0}
    yield
    writer_client.close()


class RunningWriter:
    """An AuditWriterServer serving on its own thread (with its own database connection), as the command runs it."""

    def __init__(self, path: Path, **options) -> None:
        self.server = AuditWriterServer(path, **options)
        self.server.bind()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.server.serve()
        finally:
            connection.close()

    def stop(self) -> None:
        self.server.stopped.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def running_writer(short_dir, settings, transactional_db) -> Iterator[RunningWriter]:
    writer = RunningWriter(short_dir / "writer.sock")
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_WRITER_SOCKET": str(writer.server.path)}
    yield writer
    writer.stop()


def entry(action: str = "test.writer", **extra) -> dict:
    return audit_fields(action=action, outcome="allowed", auth_kind="anonymous", client_ip="192.0.2.7", **extra)


def verify() -> None:
    report = audit_log_verify(key=audit_key(), stream_paths=[stream_path()])
    assert report.intact, report.problems


def stream_entries() -> list[dict]:
    lines = stream_path().read_text(encoding="utf-8").splitlines() if stream_path().exists() else []
    return [document for document in map(json.loads, lines) if document["type"] == "entry"]


# ---------------------------------------------------------------------------
# Through the writer
# ---------------------------------------------------------------------------


def test_requests_are_stored_and_streamed_by_the_writer(running_writer):
    client = Client()
    statuses = [client.get(path).status_code for path in ("/healthz", "/api/v1/auth/me/", "/api/v1/no-such-endpoint/")]
    assert statuses == [200, 401, 404]
    assert AuditEntry.objects.count() == 3  # durable when each response left
    running_writer.stop()  # the stream copy follows the replies: let the writer finish it
    assert running_writer.server.entries == 3
    assert sorted(document["status"] for document in stream_entries()) == [200, 401, 404]
    verify()


def test_the_writer_stores_exactly_what_the_worker_sealed(running_writer):
    sealed = audit_entry_write(entry(detail={"screening": {"score": 0.9731, "reasons": ["override"]}}, scopes=["query:read"],
                                     duration_ms=12.345, status=400, user_agent="agent/1.0"))
    stored = AuditEntry.objects.get(id=sealed["id"])
    for name in ("mac", "prev_mac", "seq", "chain_id", "detail", "scopes", "duration_ms", "status", "client_ip", "created_at"):
        assert getattr(stored, name) == sealed[name], name
    verify()


def test_concurrent_threads_share_the_writer_and_lose_nothing(running_writer):
    def worker(index: int) -> None:
        try:
            for number in range(15):
                audit_entry_write(entry(f"test.thread{index}", detail={"number": number}))
        finally:
            connection.close()

    run_threads(worker, 8)
    assert AuditEntry.objects.count() == 120
    running_writer.stop()
    assert running_writer.server.entries == 120
    assert len({document["id"] for document in stream_entries()}) == 120
    verify()


def test_overlapping_requests_share_commits(short_dir, settings, transactional_db):
    writer = RunningWriter(short_dir / "writer.sock", gather_seconds=0.05)
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_WRITER_SOCKET": str(writer.server.path)}
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        try:
            for number in range(5):
                barrier.wait(timeout=30)
                audit_entry_write(entry(f"test.thread{index}", detail={"number": number}))
        finally:
            connection.close()

    try:
        run_threads(worker, 8)
    finally:
        writer.stop()
    assert writer.server.entries == AuditEntry.objects.count() == 40
    assert writer.server.batches < 40
    verify()


def test_one_request_after_another_never_waits_to_gather(short_dir, settings, transactional_db):
    writer = RunningWriter(short_dir / "writer.sock", gather_seconds=5.0)
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_WRITER_SOCKET": str(writer.server.path)}
    started = time.monotonic()
    try:
        for number in range(20):
            audit_entry_write(entry(detail={"number": number}))
    finally:
        writer.stop()
    assert time.monotonic() - started < 5.0  # one gathering wait alone would take 5 s
    assert writer.server.batches == writer.server.entries == 20


def test_an_entry_sent_twice_is_stored_once(running_writer):
    sealed = audit_entry_write(entry())
    line = stream_line("entry", sealed).encode("ascii")
    assert store_lines([line]) == STORED
    assert AuditEntry.objects.filter(id=sealed["id"]).count() == 1


def test_a_malformed_line_fails_alone(running_writer):
    good = stream_line("entry", chain.chain_writer().seal(entry(), audit_key())).encode("ascii")
    statuses = store_lines([b'{"type": "entry", "id": "not-a-uuid"}', b"\xff\xfe", good, b"[1, 2"])
    assert statuses == FAILED + FAILED + STORED + FAILED
    assert AuditEntry.objects.count() == 1


def test_the_insert_is_prepared_and_survives_a_server_that_forgets_it(transactional_db, caplog, monkeypatch):
    """The writer's one statement is prepared on its connection; a server that drops it (a pooler handing out another
    session) costs one retry, after which the writer plans every insert."""
    from audit import writer

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are the PostgreSQL path")
    monkeypatch.setattr(writer, "_prepare", True)
    lines = [stream_line("entry", chain.chain_writer().seal(entry(), audit_key())).encode("ascii") for _ in range(4)]
    assert store_lines(lines[:1]) == STORED
    assert store_lines(lines[1:2]) == STORED
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO%%audit_auditentry%%'")
        (name,) = cursor.fetchall()
        cursor.execute(f'DEALLOCATE "{name[0]}"')  # behind the driver's back, as a pooler's other session would be
    with caplog.at_level(logging.WARNING, logger="ragsecure.audit"):
        assert store_lines(lines[2:3]) == STORED
        assert store_lines(lines[3:]) == STORED
    assert "does not keep prepared statements" in caplog.text
    assert AuditEntry.objects.count() == 4
    assert writer._prepare is False


def test_the_socket_is_private_to_its_owner(running_writer):
    mode = running_writer.server.path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_an_oversized_line_drops_that_connection_only(running_writer):
    hostile = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hostile.connect(str(running_writer.server.path))
    hostile.settimeout(10)
    chunk = b"x" * (1 << 20)
    try:
        for _ in range(6):
            hostile.sendall(chunk)
        assert hostile.recv(1) == b""  # closed by the writer
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        hostile.close()
    audit_entry_write(entry())
    assert AuditEntry.objects.count() == 1
    assert running_writer.server.entries == 1


def test_a_database_failure_in_the_writer_spools_the_entry(running_writer):
    with entries_table_gone():
        response = Client().get("/healthz")
    assert response.status_code == 200
    assert AuditEntry.objects.count() == 0
    assert [document["status"] for document in spooled()] == [200]
    assert "type" not in spooled()[0]
    out, _ = replay()
    assert out.startswith("1 spooled entry loaded")
    verify()


def test_an_entry_written_inside_a_transaction_stays_in_it(running_writer):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_entry_write(entry("test.rolled_back"))
        raise RuntimeError("the caller's change fails")
    assert running_writer.server.entries == 0
    assert not AuditEntry.objects.filter(action="test.rolled_back").exists()


# ---------------------------------------------------------------------------
# Without a working writer, each process writes its own entries
# ---------------------------------------------------------------------------


def test_a_missing_writer_means_direct_writes(short_dir, settings, transactional_db, caplog):
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_WRITER_SOCKET": str(short_dir / "nobody.sock")}
    with caplog.at_level(logging.WARNING, logger="ragsecure.audit"):
        assert Client().get("/healthz").status_code == 200
    assert AuditEntry.objects.count() == 1
    assert len(stream_entries()) == 1
    assert "audit writer unavailable" in caplog.text
    verify()


def test_a_hung_writer_costs_the_timeout_not_the_entry(short_dir, settings, transactional_db):
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(short_dir / "silent.sock"))
    silent.listen(8)  # accepts connections, never answers
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_WRITER_SOCKET": str(short_dir / "silent.sock"), "AUDIT_WRITER_TIMEOUT": 0.2}
    try:
        assert Client().get("/healthz").status_code == 200
    finally:
        silent.close()
    assert AuditEntry.objects.count() == 1
    verify()


def test_a_writer_that_stops_and_restarts(short_dir, settings, transactional_db):
    path = short_dir / "writer.sock"
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_WRITER_SOCKET": str(path)}
    first = RunningWriter(path)
    audit_entry_write(entry("test.first"))
    first.stop()
    audit_entry_write(entry("test.while_down"))  # the connection is gone: written directly
    second = RunningWriter(path)
    try:
        audit_entry_write(entry("test.after_restart"))
    finally:
        second.stop()
    assert (first.server.entries, second.server.entries) == (1, 1)
    assert sorted(AuditEntry.objects.values_list("action", flat=True)) == ["test.after_restart", "test.first", "test.while_down"]
    verify()


# ---------------------------------------------------------------------------
# Binding and the command
# ---------------------------------------------------------------------------


def test_a_stale_socket_is_replaced_but_no_other_file(short_dir):
    stale = short_dir / "stale.sock"
    old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old.bind(str(stale))
    old.close()
    server = AuditWriterServer(stale)
    server.bind()
    server.close()
    assert not stale.exists()
    regular = short_dir / "notes.txt"
    regular.write_text("keep me")
    with pytest.raises(ValueError, match="not a socket"):
        AuditWriterServer(regular).bind()
    assert regular.read_text() == "keep me"


def test_a_socket_path_too_long_is_refused(short_dir):
    with pytest.raises(ValueError, match="longer than"):
        AuditWriterServer(short_dir / ("x" * 120)).bind()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "No socket"),
        (["--socket", "/tmp/w.sock", "--max-batch", "0"], "--max-batch"),
        (["--socket", "/tmp/w.sock", "--gather-ms", "-1"], "--gather-ms"),
        (["--socket", "/" + "x" * 200], "Cannot listen"),
    ],
)
def test_the_command_refuses_bad_arguments(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("audit_writer", *arguments, stdout=io.StringIO())


def test_spooled_status_is_reported_as_not_in_database(running_writer):
    with entries_table_gone():
        line = stream_line("entry", chain.chain_writer().seal(entry(), audit_key())).encode("ascii")
        assert store_lines([line]) == SPOOLED
    assert os.path.exists(spool_path())
