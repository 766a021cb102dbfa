"""prune_audit: old entries go, signed anchors stay, and what remains still verifies; hiding a prune is detected."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit import chain
from audit.chain import audit_key, checkpoint_mac
from audit.models import AuditCheckpoint, AuditEntry
from audit.services import audit_entry_write, audit_fields
from audit.stream import stream_path
from audit.verify import audit_log_verify

pytestmark = pytest.mark.database


@pytest.fixture
def checkpoint_every(settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_CHECKPOINT_EVERY": 2}
    return 2


def write(count: int, *, days_ago: int = 0) -> list[dict]:
    created_at = timezone.now() - timedelta(days=days_ago) if days_ago else None
    return [
        audit_entry_write(
            audit_fields(
                action="query",
                outcome="allowed",
                auth_kind="jwt",
                username="alice",
                path=f"/api/v1/query/{days_ago}/{n}",
                status=200,
                created_at=created_at,
            )
        )
        for n in range(count)
    ]


def new_chain(monkeypatch) -> None:
    monkeypatch.setattr(chain, "_writer", None)


def prune(days: int) -> str:
    out = io.StringIO()
    call_command("prune_audit", "--older-than", str(days), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def problems() -> list:
    return audit_log_verify(key=audit_key(), stream_paths=[stream_path()]).problems


def verify_passes() -> str:
    out = io.StringIO()
    call_command("verify_audit_chain", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def ids(entries: list[dict]) -> set:
    return {entry["id"] for entry in entries}


def test_prune_deletes_only_old_entries():
    old = write(3, days_ago=40)
    recent = write(2, days_ago=10) + write(2)
    output = prune(30)
    assert "3 entries older than 30 day(s) deleted from 1 chain(s)" in output
    remaining = set(AuditEntry.objects.exclude(action="command.prune_audit").values_list("id", flat=True))
    assert remaining == ids(recent)
    assert not AuditEntry.objects.filter(id__in=ids(old)).exists()


def test_prune_leaves_a_signed_anchor_where_the_chain_now_starts():
    old = write(3, days_ago=40)
    write(2)
    prune(30)
    [anchor] = AuditCheckpoint.objects.filter(kind="anchor")
    assert (anchor.chain_id, anchor.seq, anchor.entry_mac) == (old[-1]["chain_id"], 3, old[-1]["mac"])
    assert anchor.mac == checkpoint_mac(
        chain_id=anchor.chain_id, seq=3, entry_mac_value=anchor.entry_mac, kind="anchor", created_at=anchor.created_at, key=audit_key()
    )


def test_prune_anchors_each_pruned_chain(monkeypatch):
    first = write(2, days_ago=40)
    new_chain(monkeypatch)
    second = write(3, days_ago=35)
    new_chain(monkeypatch)
    write(2)  # a chain with nothing old
    assert "from 2 chain(s)" in prune(30)
    anchors = {point.chain_id: point.seq for point in AuditCheckpoint.objects.filter(kind="anchor")}
    assert anchors == {first[0]["chain_id"]: 2, second[0]["chain_id"]: 3}


def test_log_verifies_after_prune():
    write(3, days_ago=40)
    write(3)
    prune(30)
    assert "intact" in verify_passes()


def test_log_with_checkpoints_verifies_after_prune(checkpoint_every):
    write(3, days_ago=40)  # checkpoint at seq 2, now in the stream only
    write(3)  # checkpoints at seq 4 and 6 survive
    prune(30)
    assert list(AuditCheckpoint.objects.filter(kind="checkpoint").order_by("seq").values_list("seq", flat=True)) == [4, 6]
    assert problems() == []


def test_whole_old_chain_pruned_is_not_reported_truncated(checkpoint_every, monkeypatch):
    old = write(4, days_ago=40)  # checkpoints at seq 2 and 4 in the stream
    new_chain(monkeypatch)
    write(2)
    prune(30)
    assert not AuditEntry.objects.filter(chain_id=old[0]["chain_id"]).exists()
    assert problems() == []
    assert "intact" in verify_passes()


def test_pruning_again_moves_the_anchor():
    write(2, days_ago=40)
    write(2, days_ago=20)
    write(2)
    prune(30)
    prune(10)
    assert list(AuditCheckpoint.objects.filter(kind="anchor").values_list("seq", flat=True)) == [4]
    assert problems() == []


def test_prune_with_nothing_old_deletes_nothing():
    recent = write(3)
    assert "0 entries older than 30 day(s) deleted from 0 chain(s)" in prune(30)
    assert ids(recent) <= set(AuditEntry.objects.values_list("id", flat=True))
    assert not AuditCheckpoint.objects.filter(kind="anchor").exists()


def test_deleting_the_anchor_is_detected_as_missing_entries():
    old = write(3, days_ago=40)
    write(2)
    prune(30)
    AuditCheckpoint.objects.filter(kind="anchor").delete()
    [problem] = problems()
    assert (problem.kind, problem.chain_id, problem.seq) == ("missing", old[0]["chain_id"], 1)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_audit_chain", stdout=io.StringIO(), stderr=err)
    assert f"MISSING: chain {old[0]['chain_id']}: entry seq 1 is missing" in err.getvalue()


def test_deleting_the_anchor_of_a_wholly_pruned_chain_is_detected(checkpoint_every, monkeypatch):
    old = write(4, days_ago=40)
    new_chain(monkeypatch)
    write(2)
    prune(30)
    AuditCheckpoint.objects.filter(kind="anchor").delete()
    [problem] = problems()
    assert (problem.kind, problem.chain_id) == ("truncated", old[0]["chain_id"])


def test_entries_deleted_beyond_the_anchor_are_detected():
    write(3, days_ago=40)
    recent = write(3)
    prune(30)
    AuditEntry.objects.filter(id=recent[0]["id"]).delete()
    [problem] = problems()
    assert (problem.kind, problem.seq) == ("missing", 4)


@pytest.mark.parametrize("days", ["0", "-5"])
def test_older_than_below_one_day_is_refused(days):
    write(2, days_ago=40)
    with pytest.raises(CommandError, match="at least 1 day"):
        call_command("prune_audit", "--older-than", days, stdout=io.StringIO(), stderr=io.StringIO())
    assert AuditEntry.objects.count() == 2


def test_prune_writes_its_own_command_entry():
    write(3, days_ago=40)
    prune(30)
    [entry] = AuditEntry.objects.filter(action="command.prune_audit")
    assert (entry.auth_kind, entry.outcome, entry.path) == ("command", "allowed", "manage.py prune_audit")
    assert (entry.detail["older_than_days"], entry.detail["deleted"], entry.detail["chains"]) == (30, 3, 1)


def test_prune_leaves_a_chain_alone_whose_old_part_does_not_verify():
    """An intruder with database access edits recent entries and back-dates them so the nightly prune would delete
    them under a freshly signed anchor: the prune refuses that chain, and the tampering stays visible."""
    write(3, days_ago=40)
    recent = write(3)
    AuditEntry.objects.filter(id=recent[0]["id"]).update(path="/api/v1/harmless/")
    AuditEntry.objects.filter(id__in=ids(recent)).update(created_at=timezone.now() - timedelta(days=40))

    errors = io.StringIO()
    with pytest.raises(CommandError, match="1 chain\\(s\\) not pruned"):
        call_command("prune_audit", "--older-than", "30", stdout=io.StringIO(), stderr=errors)

    assert "altered" in errors.getvalue(), errors.getvalue()
    assert AuditEntry.objects.exclude(action="command.prune_audit").count() == 6
    assert not AuditCheckpoint.objects.filter(kind="anchor").exists()
    assert [problem.kind for problem in problems()] == ["altered"]
    command = AuditEntry.objects.get(action="command.prune_audit")
    assert command.outcome == "error" and len(command.detail["chains_left_alone"]) == 1


def test_prune_leaves_a_chain_alone_whose_next_entry_was_deleted():
    """Deleting the first recent entry and back-dating nothing: the anchor would sit before a gap; prune refuses."""
    write(3, days_ago=40)
    recent = write(2)
    AuditEntry.objects.filter(id=recent[0]["id"]).delete()
    with pytest.raises(CommandError):
        call_command("prune_audit", "--older-than", "30", stdout=io.StringIO(), stderr=io.StringIO())
    assert AuditEntry.objects.exclude(action="command.prune_audit").count() == 4
    assert [problem.kind for problem in problems()] == ["missing"]


def test_prune_handles_old_entries_of_different_times(monkeypatch):
    """Old entries written over days (as in real life, not in one instant) still make one pass per chain."""
    first = write(1, days_ago=50) + write(1, days_ago=45) + write(1, days_ago=40)
    new_chain(monkeypatch)
    write(1, days_ago=39)
    write(1, days_ago=38)
    assert "5 entries older than 30 day(s) deleted from 2 chain(s)" in prune(30)
    assert not AuditEntry.objects.filter(id__in=ids(first)).exists()
    assert problems() == []
