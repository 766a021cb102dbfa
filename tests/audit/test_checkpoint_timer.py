"""Idle checkpoints: a worker that goes quiet still gets the tail of its chain signed, by a timer thread."""

import threading

import pytest

from audit import chain
from audit.models import AuditCheckpoint
from audit.services import CheckpointTimer, audit_checkpoint_if_idle, audit_entry_write, audit_fields


def write(count: int) -> None:
    for number in range(count):
        audit_entry_write(audit_fields(action="test.idle", outcome="allowed", auth_kind="anonymous", path=f"/t/{number}"))


def test_an_idle_tail_is_signed_once_the_interval_has_passed(settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_CHECKPOINT_SECONDS": 60.0}
    write(2)
    writer = chain.chain_writer()
    since = writer.checkpointed_at

    assert audit_checkpoint_if_idle(now=since + 59) is None
    document = audit_checkpoint_if_idle(now=since + 61)

    assert document is not None and document["seq"] == writer.seq == 2
    assert AuditCheckpoint.objects.filter(chain_id=writer.chain_id, seq=2).count() == 1
    # Nothing new since: no second checkpoint, however long the worker stays idle.
    assert audit_checkpoint_if_idle(now=since + 10_000) is None


def test_nothing_is_signed_before_the_first_entry():
    assert audit_checkpoint_if_idle(now=10**9) is None
    assert not AuditCheckpoint.objects.exists()


def test_the_timer_is_off_in_tests_and_starts_once_per_process_when_on(settings):
    timer = CheckpointTimer()
    assert timer.ensure_started() is False  # AUDIT_CHECKPOINT_TIMER is off in the test settings
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_CHECKPOINT_TIMER": True, "AUDIT_CHECKPOINT_SECONDS": 3600.0}
    try:
        assert timer.ensure_started() is True
        assert timer.ensure_started() is False
        assert sum(thread.name == "audit-checkpoint" for thread in threading.enumerate()) >= 1
    finally:
        timer.stopped.set()


@pytest.mark.django_db(transaction=True)
def test_the_timer_thread_signs_a_quiet_chain(settings, monkeypatch):
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_CHECKPOINT_TIMER": True, "AUDIT_CHECKPOINT_SECONDS": 0.1}
    write(1)
    signed = threading.Event()
    real = audit_checkpoint_if_idle

    def spy(**kwargs):
        document = real(**kwargs)
        if document is not None:
            signed.set()
        return document

    monkeypatch.setattr("audit.services.audit_checkpoint_if_idle", spy)
    timer = CheckpointTimer()
    try:
        timer.ensure_started()
        assert signed.wait(timeout=10), "the timer never signed the idle chain"
    finally:
        timer.stopped.set()
    assert AuditCheckpoint.objects.filter(chain_id=chain.chain_writer().chain_id, seq=1).exists()
