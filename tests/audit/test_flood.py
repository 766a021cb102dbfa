"""A flood of anonymous requests rejected by the per-IP limiter becomes one entry per IP per minute, with its count."""

import time

import pytest

from audit.chain import audit_key
from audit.models import AuditEntry
from audit.services import audit_floods_write, audit_idle_tick
from audit.spool import AuditUnavailable
from audit.verify import audit_log_verify
from tests.audit.conftest import entries_table_gone
from tests.conftest import assert_error

pytestmark = [pytest.mark.redis, pytest.mark.database]
TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def tight_ip_limit(settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "ANONYMOUS_RATES": {"auth": 2, "public": 2}}


def _guess(api, ip: str):
    return api.post(TOKEN_URL, {"username": "victim", "password": "guess-guess-guess"}, format="json", REMOTE_ADDR=ip)


@pytest.mark.usefixtures("tight_ip_limit")
def test_rejected_flood_is_summarised_per_ip_and_minute(api):
    for _ in range(10):
        _guess(api, "198.51.100.7")
    for _ in range(4):
        _guess(api, "198.51.100.8")

    # The two admitted attempts of each IP are entries of their own; the rejections are not (yet).
    assert AuditEntry.objects.filter(action="auth.token").count() == 4
    assert_error(_guess(api, "198.51.100.7"), 429, "rate_limited")

    written = audit_floods_write(now=time.time() + 120)

    assert written == 2
    summaries = {entry.client_ip: entry for entry in AuditEntry.objects.filter(action="flood.summary")}
    assert summaries["198.51.100.7"].detail["rejected_requests"] == 9
    assert summaries["198.51.100.8"].detail["rejected_requests"] == 2
    assert summaries["198.51.100.7"].outcome == "throttled" and summaries["198.51.100.7"].status == 429
    # Taken once: a second flush finds nothing more.
    assert audit_floods_write(now=time.time() + 120) == 0
    assert audit_log_verify(key=audit_key()).intact


@pytest.mark.usefixtures("tight_ip_limit")
def test_current_minute_is_not_summarised_early(api):
    for _ in range(5):
        _guess(api, "198.51.100.9")
    assert audit_floods_write() == 0


@pytest.mark.usefixtures("tight_ip_limit")
def test_without_redis_every_rejection_is_written(api, settings):
    from ragsecure.redis_gate import redis_gate
    from ragsecure.settings.base import cache_settings

    settings.REDIS_URL = ""
    settings.CACHES = cache_settings("")
    redis_gate.reset()
    # Local mode: token endpoints work with in-process limits, and nothing can be summarised.
    for _ in range(5):
        _guess(api, "198.51.100.10")
    assert AuditEntry.objects.filter(action="auth.token", client_ip="198.51.100.10").count() == 5


@pytest.mark.usefixtures("tight_ip_limit")
def test_taking_ended_minutes_reads_the_index_not_the_keyspace(api, monkeypatch):
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    for number in range(200):  # unrelated keys, as rate-limit logs would be
        redis.set(f"rs:{{u:{number}}}:rlog", "x")
    for _ in range(5):
        _guess(api, "198.51.100.11")

    def no_scan(*args, **kwargs):
        raise AssertionError("the keyspace was scanned")

    monkeypatch.setattr(type(redis), "scan_iter", no_scan)
    monkeypatch.setattr(type(redis), "scan", no_scan)
    assert audit_floods_write(now=time.time() + 120) == 1
    assert AuditEntry.objects.get(action="flood.summary").detail["rejected_requests"] == 3
    assert redis.zcard("rs:audit-flood:due") == 0


@pytest.mark.usefixtures("tight_ip_limit")
def test_a_summary_that_cannot_be_recorded_goes_back_to_redis(transactional_db, api, settings, tmp_path):
    """Neither the database nor the spool takes the summary: its count is handed back, not lost with the failure."""
    for _ in range(6):
        _guess(api, "198.51.100.21")  # 2 admitted, 4 rejected
    audit_dir = settings.RAGSECURE["AUDIT_DIR"]
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": str(blocker / "audit")}
    with entries_table_gone(), pytest.raises(AuditUnavailable):
        audit_floods_write(now=time.time() + 120)
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": audit_dir}

    assert audit_floods_write(now=time.time() + 120) == 1
    assert AuditEntry.objects.get(action="flood.summary").detail["rejected_requests"] == 4


@pytest.mark.usefixtures("tight_ip_limit")
def test_the_idle_tick_writes_ended_flood_minutes(transactional_db, api, spool_unwritable):
    """A process that only rejects a flood writes no entry that could carry its summary: the timer's tick does, and a
    failure there neither raises nor loses the count."""
    for _ in range(5):
        _guess(api, "198.51.100.22")  # 2 admitted (their entries are written), 3 rejected
    with entries_table_gone():
        audit_idle_tick(wall_time=time.time() + 120)  # nothing can be recorded: quietly kept for the next tick
    assert not AuditEntry.objects.filter(action="flood.summary").exists()

    audit_idle_tick(wall_time=time.time() + 120)

    assert AuditEntry.objects.get(action="flood.summary").detail["rejected_requests"] == 3


def test_rejecting_a_flood_starts_the_timer_that_writes_its_summary(settings, api, monkeypatch):
    from audit import middleware

    started = []
    monkeypatch.setattr(middleware.checkpoint_timer, "ensure_started", lambda: started.append(True) or True)
    settings.RAGSECURE = {**settings.RAGSECURE, "ANONYMOUS_RATES": {"auth": 1, "public": 1}}
    _guess(api, "198.51.100.23")  # admitted: its own entry is written (which starts the timer too)
    before, entries = len(started), AuditEntry.objects.count()
    assert _guess(api, "198.51.100.23").status_code == 429
    assert AuditEntry.objects.count() == entries  # counted into the summary, no entry of its own
    assert len(started) == before + 1
