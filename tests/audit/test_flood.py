"""Floods of alike requests (per-IP and per-user 429s, failed authentication, 404 scans, health probes) become, per
client IP and kind, one full entry and one summary per minute with the count."""

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

    # The two admitted attempts of each IP are entries of their own, and so is the first rejection; the rest are not (yet).
    assert AuditEntry.objects.filter(action="auth.token").count() == 6
    assert_error(_guess(api, "198.51.100.7"), 429, "rate_limited")

    written = audit_floods_write(now=time.time() + 120)

    assert written == 2
    summaries = {entry.client_ip: entry for entry in AuditEntry.objects.filter(action="flood.summary")}
    assert summaries["198.51.100.7"].detail["requests"] == 9
    assert summaries["198.51.100.8"].detail["requests"] == 2
    assert summaries["198.51.100.7"].detail["written_in_full"] == 1
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
    assert AuditEntry.objects.get(action="flood.summary").detail["requests"] == 3
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
    assert AuditEntry.objects.get(action="flood.summary").detail["requests"] == 4


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

    assert AuditEntry.objects.get(action="flood.summary").detail["requests"] == 3


def test_rejecting_a_flood_starts_the_timer_that_writes_its_summary(settings, api, monkeypatch):
    from audit import middleware

    started = []
    monkeypatch.setattr(middleware.checkpoint_timer, "ensure_started", lambda: started.append(True) or True)
    settings.RAGSECURE = {**settings.RAGSECURE, "ANONYMOUS_RATES": {"auth": 1, "public": 1}}
    _guess(api, "198.51.100.23")  # admitted: its own entry is written (which starts the timer too)
    assert _guess(api, "198.51.100.23").status_code == 429  # the first rejection of the minute: an entry of its own
    before, entries = len(started), AuditEntry.objects.count()
    assert _guess(api, "198.51.100.23").status_code == 429
    assert AuditEntry.objects.count() == entries  # counted into the summary, no entry of its own
    assert len(started) == before + 1


# -- every kind of alike request -----------------------------------------------------------------------------------


def _summaries(ip: str) -> dict[str, AuditEntry]:
    audit_floods_write(now=time.time() + 120)
    return {entry.detail["kind"]: entry for entry in AuditEntry.objects.filter(action="flood.summary", client_ip=ip)}


def test_bogus_bearer_tokens_from_one_ip_write_a_handful_of_entries(api, settings):
    """300 forged tokens: failed authentication is rate limited per IP, and both the 401s and the 429s are summarised."""
    settings.RAGSECURE = {**settings.RAGSECURE, "ANONYMOUS_RATES": {**settings.RAGSECURE["ANONYMOUS_RATES"], "auth_failures": 30}}
    statuses = [
        api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer not.a.token{n}", REMOTE_ADDR="203.0.113.40").status_code
        for n in range(300)
    ]
    assert statuses == [401] * 30 + [429] * 270
    assert_error(api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION="Bearer x.y.z", REMOTE_ADDR="203.0.113.40"), 429, "rate_limited")

    summaries = _summaries("203.0.113.40")

    assert AuditEntry.objects.filter(client_ip="203.0.113.40").exclude(action="flood.summary").count() == 2
    assert summaries["401:token_invalid"].detail["requests"] == 30 and summaries["401:token_invalid"].status == 401
    assert summaries["429:ip:auth_failures"].detail["requests"] == 271
    assert AuditEntry.objects.filter(client_ip="203.0.113.40").count() == 4
    assert audit_log_verify(key=audit_key()).intact


def test_a_valid_token_from_a_flooding_ip_is_still_served(api, settings, tokens):
    """Only failures count against the IP: a caller sharing it with an attacker keeps working."""
    settings.RAGSECURE = {**settings.RAGSECURE, "ANONYMOUS_RATES": {**settings.RAGSECURE["ANONYMOUS_RATES"], "auth_failures": 3}}
    for n in range(10):
        api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer bogus{n}", REMOTE_ADDR="203.0.113.41")
    response = api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}", REMOTE_ADDR="203.0.113.41")
    assert response.status_code == 200


def test_requests_without_credentials_are_summarised(api):
    for _ in range(50):
        assert api.get("/api/v1/auth/me/", REMOTE_ADDR="203.0.113.42").status_code == 401
    summaries = _summaries("203.0.113.42")
    assert summaries["401:authentication_failed"].detail["requests"] == 50
    assert AuditEntry.objects.filter(client_ip="203.0.113.42").count() == 2


def test_a_404_scan_with_long_paths_is_summarised(api):
    for n in range(100):
        assert api.get(f"/{'probe' * 400}/{n}", REMOTE_ADDR="203.0.113.43").status_code == 404
    summaries = _summaries("203.0.113.43")
    assert summaries["404:not_found"].detail["requests"] == 100
    assert AuditEntry.objects.filter(client_ip="203.0.113.43").count() == 2


def test_health_probes_are_summarised(api):
    for _ in range(60):
        assert api.get("/healthz", REMOTE_ADDR="203.0.113.44").status_code == 200
    summaries = _summaries("203.0.113.44")
    assert summaries["200:service.healthz"].detail["requests"] == 60
    assert summaries["200:service.healthz"].outcome == "allowed"
    assert AuditEntry.objects.filter(client_ip="203.0.113.44").count() == 2


def test_an_authenticated_users_429s_are_summarised(api, tokens, user):
    limit = user.tier.requests_per_minute
    statuses = [
        api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}", REMOTE_ADDR="203.0.113.45").status_code
        for _ in range(limit + 40)
    ]
    assert statuses.count(200) == limit and statuses.count(429) == 40
    summaries = _summaries("203.0.113.45")
    summary = summaries[f"429:user:{user.pk}"]
    assert summary.detail["requests"] == 40 and summary.actor_id == user.pk and summary.auth_kind == "jwt"
    assert AuditEntry.objects.filter(client_ip="203.0.113.45", action="auth.me").count() == limit + 1


def test_sign_in_attempts_keep_an_entry_each(api):
    """Credential guesses are security events: each is an entry (the per-IP limit and the lockout bound them)."""
    for _ in range(5):
        assert _guess(api, "203.0.113.46").status_code == 401
    assert AuditEntry.objects.filter(client_ip="203.0.113.46", action="auth.token").count() == 5
    assert not _summaries("203.0.113.46")


def test_a_single_refusal_has_its_full_entry_and_no_summary(api):
    assert api.get("/api/v1/auth/me/", REMOTE_ADDR="203.0.113.47").status_code == 401
    assert not _summaries("203.0.113.47")
    entry = AuditEntry.objects.get(client_ip="203.0.113.47")
    assert entry.detail["flood"] == {"kind": "401:authentication_failed", "first_of_minute": True}
