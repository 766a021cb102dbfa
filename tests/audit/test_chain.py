"""The audit hash chain: what an entry's MAC covers, how entries link, one chain per process, signed checkpoints."""

import json
import os
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone

from audit import chain
from audit.chain import COVERED_FIELDS, GENESIS, ChainWriter, audit_key, checkpoint_mac, entry_mac
from audit.models import AuditCheckpoint, AuditEntry
from audit.services import audit_entry_write, audit_fields
from audit.stream import stream_path
from audit.verify import audit_log_verify


@pytest.fixture
def checkpoint_every(settings):
    """Checkpoint every 3 entries (the setting, read by the writer the test creates)."""
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_CHECKPOINT_EVERY": 3}
    return 3


def write(count: int = 1, **overrides) -> list[dict]:
    """Write `count` entries through the real write path; returns the sealed fields."""
    fields = {"action": "test.write", "outcome": "allowed", "auth_kind": "anonymous", **overrides}
    return [audit_entry_write(audit_fields(path=f"/t/{number}", **fields)) for number in range(count)]


def rows(chain_id: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(chain_id=chain_id).order_by("seq"))


def stream_documents() -> list[dict]:
    return [json.loads(line) for line in stream_path().read_text(encoding="utf-8").splitlines()]


def full_entry() -> dict:
    """A sealed entry with every covered field holding a value."""
    fields = audit_fields(
        action="query",
        outcome="allowed",
        auth_kind="jwt",
        request_id="req-1",
        client_request_id="client-1",
        actor_id=7,
        username="alice",
        token_jti="jti-1",
        scopes=["query:read"],
        method="POST",
        path="/api/v1/query/",
        query_string="page=2",
        status=200,
        duration_ms=12.5,
        client_ip="192.0.2.10",
        user_agent="curl/8",
        detail={"throttle": {"allowed": True}},
    )
    return ChainWriter().seal(fields, audit_key())


def changed(value):
    """A different value of the same kind."""
    if value is None:
        return 1
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1)
    if isinstance(value, uuid.UUID):
        return uuid.uuid4()
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, "documents:read"]
    if isinstance(value, dict):
        return {**value, "screening": "flagged"}
    raise AssertionError(f"no variant for {value!r}")


def test_sealed_mac_verifies_with_the_key():
    sealed = full_entry()
    assert entry_mac(sealed, audit_key()) == sealed["mac"]


@pytest.mark.parametrize("name", COVERED_FIELDS)
def test_mac_covers_field(name):
    sealed = full_entry()
    assert entry_mac({**sealed, name: changed(sealed[name])}, audit_key()) != sealed["mac"]


def test_mac_depends_on_the_key():
    sealed = full_entry()
    assert entry_mac(sealed, b"another-key-an-attacker-might-guess") != sealed["mac"]


@pytest.mark.parametrize("name", ["username", "client_ip", "user_agent"])
def test_personal_fields_enter_the_mac_only_through_their_digests(name):
    sealed = full_entry()
    assert entry_mac({**sealed, name: ""}, audit_key()) == sealed["mac"]
    digest = f"{name}_digest"
    assert entry_mac({**sealed, digest: changed(sealed[digest])}, audit_key()) != sealed["mac"]


@pytest.mark.database
def test_entries_link_by_previous_mac():
    written = write(4)
    stored = rows(written[0]["chain_id"])
    assert [row.id for row in stored] == [entry["id"] for entry in written]
    assert stored[0].prev_mac == GENESIS
    for previous, entry in zip(stored, stored[1:]):
        assert entry.prev_mac == previous.mac


@pytest.mark.database
def test_stored_entries_verify_against_their_mac():
    write(3)
    for row in AuditEntry.objects.all():
        fields = {field.attname: getattr(row, field.attname) for field in AuditEntry._meta.concrete_fields}
        assert entry_mac(fields, audit_key()) == row.mac


@pytest.mark.database
def test_sequence_starts_at_one_per_chain(monkeypatch):
    first = write(3)
    monkeypatch.setattr(chain, "_writer", None)
    second = write(2)
    assert first[0]["chain_id"] != second[0]["chain_id"]
    assert [row.seq for row in rows(first[0]["chain_id"])] == [1, 2, 3]
    assert [row.seq for row in rows(second[0]["chain_id"])] == [1, 2]
    assert rows(second[0]["chain_id"])[0].prev_mac == GENESIS


@pytest.mark.database
def test_forked_process_starts_a_chain_of_its_own(monkeypatch):
    parent = write(2)
    child_pid = os.getpid() + 1
    monkeypatch.setattr(chain.os, "getpid", lambda: child_pid)
    child = write(2)
    assert child[0]["chain_id"] != parent[0]["chain_id"]
    assert str(child_pid) in child[0]["chain_id"]
    assert [entry["seq"] for entry in child] == [1, 2]
    assert child[0]["prev_mac"] == GENESIS
    report = audit_log_verify(key=audit_key())
    assert report.intact, report.problems
    assert (report.entries, report.chains) == (4, 2)


@pytest.mark.database
def test_checkpoints_are_stored_every_n_entries(checkpoint_every):
    written = write(7)
    chain_id = written[0]["chain_id"]
    points = list(AuditCheckpoint.objects.filter(chain_id=chain_id).order_by("seq"))
    assert [point.seq for point in points] == [3, 6]
    macs = {entry["seq"]: entry["mac"] for entry in written}
    for point in points:
        assert point.kind == "checkpoint"
        assert point.entry_mac == macs[point.seq]
        assert point.mac == checkpoint_mac(
            chain_id=chain_id,
            seq=point.seq,
            entry_mac_value=point.entry_mac,
            kind="checkpoint",
            created_at=point.created_at,
            key=audit_key(),
        )


@pytest.mark.database
def test_checkpoints_are_written_to_the_stream(checkpoint_every):
    written = write(7)
    macs = {entry["seq"]: entry["mac"] for entry in written}
    points = [document for document in stream_documents() if document["type"] == "checkpoint"]
    assert [point["seq"] for point in points] == [3, 6]
    for point in points:
        assert point["chain_id"] == written[0]["chain_id"]
        assert point["entry_mac"] == macs[point["seq"]]
        assert point["mac"] == checkpoint_mac(
            chain_id=point["chain_id"],
            seq=point["seq"],
            entry_mac_value=point["entry_mac"],
            kind=point["kind"],
            created_at=datetime.fromisoformat(point["created_at"]),
            key=audit_key(),
        )


@pytest.mark.database
def test_checkpoint_interval_change_reaches_a_running_writer(settings):
    write(1)  # the writer exists before the setting changes
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_CHECKPOINT_EVERY": 2}
    write(4)
    assert list(AuditCheckpoint.objects.order_by("seq").values_list("seq", flat=True)) == [2, 4]


def test_every_stream_line_is_a_json_object():
    # Attacker text with line breaks must not split a record or forge one.
    write(5, user_agent='x\n{"type": "checkpoint", "seq": 99}\r\n', detail={"prompt": "a\u2028b\nc"})
    lines = stream_path().read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    for line in lines:
        assert isinstance(json.loads(line), dict)


@pytest.mark.database
def test_stream_carries_every_entry_with_its_mac():
    write(5, username="alice", detail={"reason": "line one\nline two"})
    entries = {document["id"]: document for document in stream_documents() if document["type"] == "entry"}
    stored = {str(row.id): row for row in AuditEntry.objects.all()}
    assert set(entries) == set(stored)
    for entry_id, document in entries.items():
        row = stored[entry_id]
        assert (document["chain_id"], document["seq"], document["mac"]) == (row.chain_id, row.seq, row.mac)


@pytest.mark.database
def test_request_entries_form_one_chain(api, settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_FLOOD_SUMMARIES": False}
    for _ in range(3):
        assert api.get("/healthz").status_code == 200
    stored = list(AuditEntry.objects.order_by("seq"))
    assert [row.path for row in stored] == ["/healthz"] * 3
    assert len({row.chain_id for row in stored}) == 1
    assert [row.seq for row in stored] == [1, 2, 3]
    assert audit_log_verify(key=audit_key()).intact


@pytest.mark.database
def test_entry_with_a_non_utc_timestamp_verifies():
    write(1, created_at=timezone.now().astimezone(dt_timezone(timedelta(hours=2))))
    report = audit_log_verify(key=audit_key())
    assert report.intact, [str(problem) for problem in report.problems]


def test_a_checkpoint_signs_only_the_durable_prefix_of_its_chain():
    """Entries of other threads still being written may yet fail: the position stops before the first of them."""
    writer = ChainWriter()
    key = audit_key()
    first, second, third = (writer.seal(audit_fields(action="t", outcome="allowed", auth_kind="anonymous"), key) for _ in range(3))
    assert writer.position() == (0, GENESIS)
    writer.settle(1)
    writer.settle(3)
    assert writer.position() == (1, first["mac"])  # seq 2 is still in flight
    writer.settle(2)
    assert writer.position() == (3, third["mac"])
    assert second["prev_mac"] == first["mac"]


@pytest.mark.django_db(transaction=True)
def test_an_entry_whose_write_fails_after_a_checkpoint_leaves_the_log_verifiable():
    """A checkpoint taken while another entry is in flight does not claim it; that entry then fails for good (its
    request is refused): the log still verifies, because nobody deleted anything."""
    write(2)
    writer = chain.chain_writer()
    writer.seal(audit_fields(action="test.in_flight", outcome="allowed", auth_kind="anonymous"), audit_key())  # never stored
    from audit.services import audit_checkpoint_write

    document = audit_checkpoint_write(writer=writer)
    assert document["seq"] == 2
    chain.chain_reset(writer)
    write(1)
    report = audit_log_verify(key=audit_key(), stream_paths=[stream_path()])
    assert report.intact, [str(problem) for problem in report.problems]


@pytest.mark.django_db(transaction=True)
def test_an_unexpected_failure_while_writing_retires_the_chain(monkeypatch):
    """Not only AuditUnavailable: anything that interrupts an entry's write after its seal ends that chain, so no
    entry stays in flight in a chain that goes on (its checkpoints would never sign past it)."""
    from audit.writer import writer_client

    write(2)
    first = chain.chain_writer()

    def interrupted(line):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(writer_client, "write", interrupted)
    with pytest.raises(RuntimeError):
        write(1)
    monkeypatch.undo()
    [entry] = write(1)
    assert entry["chain_id"] != first.chain_id and entry["seq"] == 1
    report = audit_log_verify(key=audit_key(), stream_paths=[stream_path()])
    assert report.intact, [str(problem) for problem in report.problems]
