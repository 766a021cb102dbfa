"""The audit context: notes join the request's entry, stand alone outside one, and each state-changing command writes one entry."""

import io
import json
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.utils import timezone

from accounts.keyring import SECRET_NAME
from accounts.models import User
from audit import chain
from audit.context import audit_note, command_audit, current_audit
from audit.models import AuditEntry
from audit.services import audit_entry_write, audit_fields
from audit.spool import spool_path
from ragsecure.secrets import SecretsError, secrets_provider

pytestmark = pytest.mark.database

STRONG_PASSWORD = "correct-horse-battery-staple-19"
WEAK_PASSWORD = "carol-pw"


@pytest.fixture(autouse=True)
def fresh_chain(monkeypatch, settings, tmp_path):
    """A chain, stream and spool of this test's own."""
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": str(tmp_path)}
    monkeypatch.setattr(chain, "_writer", None)


@pytest.fixture
def restore_key_ring():
    original = secrets_provider().get(SECRET_NAME)
    yield
    secrets_provider().put(SECRET_NAME, original)


def new_entries(run) -> list[AuditEntry]:
    """Run something; return the entries it wrote (oldest first)."""
    before = set(AuditEntry.objects.values_list("id", flat=True))
    run()
    return list(AuditEntry.objects.exclude(id__in=before).order_by("created_at", "seq"))


def one_entry(run) -> AuditEntry:
    entries = new_entries(run)
    assert len(entries) == 1, [(entry.action, entry.path, entry.outcome) for entry in entries]
    return entries[0]


def command(*args, **kwargs):
    """call_command with its output captured; returns a thunk for new_entries/one_entry."""

    def run():
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO(), **kwargs)

    return run


def failing(*args, **kwargs):
    """A command that must fail with CommandError."""

    def run():
        with pytest.raises(CommandError):
            call_command(*args, stdout=io.StringIO(), stderr=io.StringIO(), **kwargs)

    return run


def stored_text(entry: AuditEntry) -> str:
    row = {field.attname: getattr(entry, field.attname) for field in entry._meta.concrete_fields}
    return json.dumps(row, default=str, ensure_ascii=False)


def assert_command_entry(entry: AuditEntry, name: str, outcome: str = "allowed") -> None:
    assert (entry.auth_kind, entry.path, entry.outcome) == ("command", f"manage.py {name}", outcome)
    assert entry.actor_id is None
    assert entry.method == "" and entry.status is None


# ---------------------------------------------------------------------------
# Notes inside and outside a context
# ---------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.urls("tests.audit.audit_urls")
def test_notes_in_a_request_join_its_entry_and_the_first_names_it(api):
    entries = new_entries(lambda: api.post("/api/v1/test/noting/", {}, format="json"))

    assert len(entries) == 1
    entry = entries[0]
    assert entry.path == "/api/v1/test/noting/"
    assert entry.action == "widget.create"
    assert entry.detail["events"] == [
        {"action": "widget.create", "widget": "w-1", "reason": "first change"},
        {"action": "widget.link", "widget": "w-1", "target": "w-2", "reason": "second change"},
    ]


def test_note_outside_any_context_writes_an_entry_of_its_own(transactional_db):
    assert current_audit() is None

    entry = one_entry(lambda: audit_note("user.unlock", user=42, reason="fixed from a shell"))

    assert entry.action == "user.unlock"
    assert (entry.auth_kind, entry.outcome) == ("command", "allowed")
    assert entry.detail["events"] == [{"action": "user.unlock", "user": 42, "reason": "fixed from a shell"}]


def test_notes_inside_a_command_context_join_its_one_entry():
    def run():
        with command_audit("demo"):
            audit_note("thing.create", thing="t-1", reason="setup")
            audit_note("thing.update", thing="t-1", reason="tweak")

    entry = one_entry(run)

    assert_command_entry(entry, "demo")
    assert entry.action == "command.demo"  # a command's entry is named by the command; events say what it did
    assert [event["action"] for event in entry.detail["events"]] == ["thing.create", "thing.update"]


def test_command_context_that_raises_writes_an_error_entry():
    def run():
        with pytest.raises(RuntimeError), command_audit("demo"):
            audit_note("thing.create", thing="t-1", reason="setup")
            raise RuntimeError("disk full")

    entry = one_entry(run)

    assert_command_entry(entry, "demo", outcome="error")
    assert entry.detail["events"][0]["thing"] == "t-1"


def test_context_ends_with_the_command():
    with command_audit("demo"):
        assert current_audit() is not None

    assert current_audit() is None


# ---------------------------------------------------------------------------
# One entry per state-changing management command
# ---------------------------------------------------------------------------


def test_bootstrap_writes_one_entry_listing_what_it_created(transactional_db):
    out = io.StringIO()

    entry = one_entry(lambda: call_command("bootstrap", stdout=out, stderr=io.StringIO()))

    assert_command_entry(entry, "bootstrap")
    actions = {event["action"] for event in entry.detail["events"]}
    assert {"scope.create", "tier.create", "group.sync", "user.create_superuser"} <= actions
    printed_password = re.search(r"password \(shown once\): (\S+)", out.getvalue()).group(1)
    assert printed_password not in stored_text(entry)


def test_bootstrap_entry_is_named_by_the_command_whatever_it_created(transactional_db):
    # Filtering the log by action must find the run that created the first superuser, not only the no-op reruns.
    first = one_entry(command("bootstrap"))
    rerun = one_entry(command("bootstrap"))

    assert rerun.action == "command.bootstrap"
    assert first.action == rerun.action


def test_bootstrap_rerun_writes_one_unchanged_entry(transactional_db):
    call_command("bootstrap", stdout=io.StringIO())

    entry = one_entry(command("bootstrap"))

    assert_command_entry(entry, "bootstrap")
    assert entry.detail == {"changed": False}


def test_create_api_user_writes_one_entry_without_the_password(tiers, scopes, monkeypatch):
    monkeypatch.setenv("RAGSECURE_PASSWORD", STRONG_PASSWORD)

    entry = one_entry(command("create_api_user", "carol", "--tier", "pro", "--scope", "query:read"))

    assert_command_entry(entry, "create_api_user")
    assert entry.action == "command.create_api_user"
    assert entry.detail["events"][0]["action"] == "user.create"
    assert entry.detail["events"] == [
        {"action": "user.create", "actor": "system", "reason": "", "user": "carol", "tier": "pro", "scopes": ["query:read"]}
    ]
    assert STRONG_PASSWORD not in stored_text(entry)


def test_create_api_user_with_a_weak_password_writes_one_denied_entry(tiers, scopes, monkeypatch):
    monkeypatch.setenv("RAGSECURE_PASSWORD", WEAK_PASSWORD)

    entry = one_entry(failing("create_api_user", "carol", "--tier", "free", "--scope", "query:read"))

    assert_command_entry(entry, "create_api_user", outcome="denied")
    assert not User.objects.filter(username="carol").exists()
    assert WEAK_PASSWORD not in stored_text(entry)


@pytest.mark.redis
def test_revoke_tokens_writes_one_entry_with_target_and_reason(make_user):
    alice = make_user("alice")

    entry = one_entry(command("revoke_tokens", "--user", "alice", "--reason", "laptop stolen"))

    assert_command_entry(entry, "revoke_tokens")
    assert entry.action == "command.revoke_tokens"
    assert entry.detail["events"][0]["action"] == "admin.revoke_tokens"
    assert entry.detail["events"] == [{"action": "admin.revoke_tokens", "actor": "system", "reason": "laptop stolen", "user": alice.pk}]


def test_rotate_signing_key_writes_one_entry(restore_key_ring, settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "SECRETS_CACHE_TTL": 0}
    entry = one_entry(command("rotate_signing_key"))

    assert_command_entry(entry, "rotate_signing_key")
    assert entry.action == "command.rotate_signing_key"
    assert [event["action"] for event in entry.detail["events"]] == ["signing_key.stage", "signing_key.promote"]
    assert all(event["active_kid"] for event in entry.detail["events"])
    assert "PRIVATE" not in stored_text(entry)


def test_rotate_signing_key_that_cannot_store_writes_one_error_entry(restore_key_ring, monkeypatch):
    def refuse(ring):
        raise SecretsError("the secrets backend is read-only")

    monkeypatch.setattr("accounts.management.commands.rotate_signing_key.key_ring_store", refuse)

    entry = one_entry(failing("rotate_signing_key"))

    assert_command_entry(entry, "rotate_signing_key", outcome="error")


def refuse_audit_inserts(execute, sql, params, many, context):
    if sql.lstrip().upper().startswith("INSERT") and AuditEntry._meta.db_table in sql:
        raise OperationalError("database is locked")
    return execute(sql, params, many, context)


def test_replay_audit_spool_writes_one_entry_of_its_own(transactional_db):
    with connection.execute_wrapper(refuse_audit_inserts):
        audit_note("user.unlock", user=42, reason="written while the database was down")
    assert spool_path().exists()
    assert not AuditEntry.objects.filter(action="user.unlock").exists()

    entries = new_entries(command("replay_audit_spool"))

    assert sorted(entry.action for entry in entries) == ["command.replay_audit_spool", "user.unlock"]
    [own] = [entry for entry in entries if entry.path == "manage.py replay_audit_spool"]
    assert_command_entry(own, "replay_audit_spool")
    assert own.detail == {"loaded": 1, "unreadable": 0}


def test_replay_of_an_empty_spool_still_writes_one_entry():
    entry = one_entry(command("replay_audit_spool"))

    assert_command_entry(entry, "replay_audit_spool")
    assert entry.detail == {"loaded": 0, "unreadable": 0}


def test_prune_audit_writes_one_entry_that_survives_the_prune():
    old = timezone.now() - timedelta(days=40)
    audit_entry_write(audit_fields(action="old.thing", outcome="allowed", auth_kind="command", created_at=old))

    entries = new_entries(command("prune_audit", "--older-than", "30"))

    assert len(entries) == 1
    assert_command_entry(entries[0], "prune_audit")
    assert entries[0].action == "command.prune_audit"
    assert entries[0].detail["deleted"] == 1
    assert not AuditEntry.objects.filter(action="old.thing").exists()


def test_verify_audit_chain_writes_no_entry(transactional_db):
    audit_note("user.unlock", user=42, reason="something to verify")
    assert AuditEntry.objects.filter(action="user.unlock").exists()

    assert new_entries(command("verify_audit_chain")) == []
