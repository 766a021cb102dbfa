"""With the database refusing audit entries, requests still succeed, their entries spool to disk and replay later."""

import io
import json
import os
import uuid

import pytest
from django.core.management import call_command

from audit import spool
from audit.chain import audit_key
from audit.models import AuditEntry
from audit.services import audit_entry_write, audit_fields
from audit.spool import spool_append, spool_path
from audit.stream import stream_path
from audit.verify import audit_log_verify
from tests.audit.conftest import entries_table_gone, table_gone
from tests.conftest import assert_error

pytestmark = pytest.mark.database


@pytest.fixture(autouse=True)
def every_request_in_full(settings):
    """These tests count /healthz entries one by one: no flood summaries."""
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_FLOOD_SUMMARIES": False}


def spooled() -> list[dict]:
    if not spool_path().exists():
        return []
    return [json.loads(line) for line in spool_path().read_text(encoding="utf-8").splitlines() if line.strip()]


def replay() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("replay_audit_spool", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def verify() -> None:
    call_command("verify_audit_chain", stdout=io.StringIO(), stderr=io.StringIO())


def probe_entries() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(path="/healthz").order_by("seq"))


def test_requests_succeed_while_the_database_refuses_entries(transactional_db, api):
    with entries_table_gone():
        statuses = [api.get("/healthz").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


def test_refused_entries_land_in_the_spool(transactional_db, api):
    with entries_table_gone():
        request_ids = [api.get("/healthz")["X-Request-ID"] for _ in range(3)]
    lines = spooled()
    assert [line["request_id"] for line in lines] == request_ids
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert all(line["path"] == "/healthz" and line["status"] == 200 and line["mac"] for line in lines)
    assert AuditEntry.objects.count() == 0


def test_each_spooled_entry_is_fsynced(transactional_db, api, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(spool.os, "fsync", recording_fsync)
    with entries_table_gone():
        for _ in range(2):
            api.get("/healthz")
    assert synced.count(spool_path().stat().st_ino) == 2


def test_replay_loads_the_spooled_entries(transactional_db, api):
    with entries_table_gone():
        for _ in range(3):
            api.get("/healthz")
    output, _ = replay()
    assert "3 spooled entries loaded" in output
    assert len(probe_entries()) == 3
    assert spooled() == []


def test_replayed_entries_equal_the_stored_ones(transactional_db, api):
    with entries_table_gone():
        api.get("/healthz", HTTP_USER_AGENT="probe/1.0")
    [line] = spooled()
    replay()
    [entry] = probe_entries()
    assert (str(entry.id), entry.mac, entry.user_agent, entry.request_id) == (line["id"], line["mac"], "probe/1.0", line["request_id"])


def test_replay_twice_loads_nothing_new(transactional_db, api):
    with entries_table_gone():
        for _ in range(2):
            api.get("/healthz")
    replay()
    output, _ = replay()
    assert "0 spooled entries loaded" in output
    assert len(probe_entries()) == 2


def test_replay_skips_entries_already_in_the_database(transactional_db, api):
    api.get("/healthz")
    [entry] = probe_entries()
    # The insert committed but its acknowledgement was lost: the entry went to the spool as well.
    spool_append({field.attname: getattr(entry, field.attname) for field in AuditEntry._meta.concrete_fields})
    output, _ = replay()
    assert "0 spooled entries loaded" in output
    assert len(probe_entries()) == 1


def test_verify_names_spooled_entries_missing_until_replayed(transactional_db, api):
    api.get("/healthz")
    with entries_table_gone():
        api.get("/healthz")
    api.get("/healthz")
    problems = audit_log_verify(key=audit_key(), stream_paths=[stream_path()]).problems
    assert [(problem.kind, problem.seq) for problem in problems] == [("missing", 2)]


def test_log_verifies_after_replay_with_one_entry_per_request(transactional_db, api):
    api.get("/healthz")
    with entries_table_gone():
        for _ in range(3):
            api.get("/healthz")
    api.get("/healthz")
    replay()
    replay()
    verify()
    assert len(probe_entries()) == 5
    assert [entry.seq for entry in probe_entries()] == [1, 2, 3, 4, 5]


def test_corrupt_spool_lines_are_kept_aside_and_reported(transactional_db, api):
    with entries_table_gone():
        api.get("/healthz")
        with open(spool_path(), "a", encoding="utf-8") as handle:
            handle.write('{"id": "4b0c", "created_at": "2026-\n')
            handle.write("\x00\x00garbage\n")
        api.get("/healthz")
    output, errors = replay()
    assert "2 spooled entries loaded" in output
    assert "2 unreadable or refused line(s)" in errors
    rejected = spool_path().with_suffix(".rejected.jsonl").read_text(encoding="utf-8").splitlines()
    assert rejected == ['{"id": "4b0c", "created_at": "2026-', "\x00\x00garbage"]
    assert len(probe_entries()) == 2
    assert spooled() == []


def test_spool_line_that_is_json_but_no_entry_is_kept_aside(transactional_db, api):
    with entries_table_gone():
        api.get("/healthz")
        with open(spool_path(), "a", encoding="utf-8") as handle:
            handle.write('{"note": "not an entry"}\n')
        api.get("/healthz")
    output, errors = replay()
    assert "2 spooled entries loaded" in output
    assert "1 unreadable or refused line(s)" in errors
    assert len(probe_entries()) == 2


def test_torn_spool_write_does_not_swallow_the_next_entry(transactional_db, api):
    # A crash in the middle of an append leaves a partial line with no newline.
    spool_path().parent.mkdir(parents=True, exist_ok=True)
    spool_path().write_text('{"id": "4b0c", "created_at": "20', encoding="utf-8")
    with entries_table_gone():
        api.get("/healthz")
    output, _ = replay()
    assert "1 spooled entry loaded" in output
    assert len(probe_entries()) == 1


def test_request_fails_503_when_neither_database_nor_spool_take_its_entry(transactional_db, api, spool_unwritable):
    with entries_table_gone():
        response = api.get("/healthz")
    assert_error(response, 503, "service_unavailable")


def test_refused_request_leaves_no_gap_in_the_chain(transactional_db, api, settings, tmp_path):
    audit_dir = settings.RAGSECURE["AUDIT_DIR"]
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    api.get("/healthz")
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": str(blocker / "audit")}
    with entries_table_gone():
        assert api.get("/healthz").status_code == 503
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": audit_dir}
    api.get("/healthz")
    # Nobody deleted anything: the refused request's entry never existed.
    report = audit_log_verify(key=audit_key(), stream_paths=[stream_path()])
    assert report.intact, [str(problem) for problem in report.problems]


def test_direct_write_raises_when_neither_database_nor_spool_take_it(transactional_db, spool_unwritable):
    from audit.spool import AuditUnavailable

    with entries_table_gone(), pytest.raises(AuditUnavailable):
        audit_entry_write(audit_fields(action="test.write", outcome="allowed", auth_kind="command"))


def test_replay_without_a_spool_loads_nothing(transactional_db):
    output, errors = replay()
    assert "0 spooled entries loaded" in output
    assert errors == ""


def test_replay_writes_its_own_command_entry(transactional_db, api):
    with entries_table_gone():
        api.get("/healthz")
    replay()
    [entry] = AuditEntry.objects.filter(action="command.replay_audit_spool")
    assert (entry.auth_kind, entry.detail["loaded"], entry.detail["unreadable"]) == ("command", 1, 0)


def test_a_session_the_database_cannot_resolve_still_gets_its_entry(transactional_db, api):
    """A session cookie makes the entry name its user from the database; with the database failing there, the
    request keeps its answer (no 500) and its entry, which says the caller could not be resolved."""
    api.cookies["sessionid"] = "a" * 32
    with table_gone("django_session"):
        response = api.get("/no-such-page/")  # no view resolves the session user first: the entry has to
    assert_error(response, 404, "not_found")
    entry = AuditEntry.objects.get(path="/no-such-page/")
    assert (entry.auth_kind, entry.username, entry.actor_id) == ("session", "", None)
    assert entry.detail["session_user"].startswith("unresolved")
    verify()


def test_replay_reports_an_entry_whose_place_in_the_chain_is_taken(transactional_db, api):
    """An intruder plants a row at the (chain, seq) of an entry waiting in the spool: the genuine entry is not
    silently dropped as a duplicate; it is kept in the rejected file and reported, and the others load."""
    api.get("/healthz")
    with entries_table_gone():
        api.get("/healthz")
        api.get("/healthz")
    genuine = spooled()[0]
    planted = {field.attname: getattr(probe_entries()[0], field.attname) for field in AuditEntry._meta.concrete_fields}
    planted.update(id=uuid.uuid4(), seq=genuine["seq"], path="/planted")
    AuditEntry.objects.create(**planted)

    output, errors = replay()

    assert "1 spooled entry loaded" in output
    assert "1 unreadable or refused line(s)" in errors
    [kept] = [json.loads(line) for line in spool_path().with_suffix(".rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    assert kept["id"] == genuine["id"]
    assert spooled() == []
    problems = audit_log_verify(key=audit_key(), stream_paths=[stream_path()]).problems
    assert [(problem.seq, problem.entry_id) for problem in problems] == [(genuine["seq"], str(planted["id"]))]  # the planted row


def test_spool_pending_counts_the_entries_waiting_and_nothing_else():
    assert spool.spool_pending() == 0  # no spool file yet
    with entries_table_gone():
        audit_entry_write(audit_fields(action="probe", outcome="allowed", auth_kind="anonymous"))
        audit_entry_write(audit_fields(action="probe", outcome="allowed", auth_kind="anonymous"))
    with open(spool_path(), "a", encoding="utf-8") as handle:
        handle.write("\n  \n")  # blank lines are not entries
    assert spool.spool_pending() == 2
    replay()
    assert spool.spool_pending() == 0
