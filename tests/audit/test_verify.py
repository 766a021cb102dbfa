"""verify_audit_chain against an intact log and against an attacker who edits, deletes, inserts or truncates entries."""

import hashlib
import io
import json
import shutil

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from audit import chain
from audit.chain import COVERED_FIELDS, audit_key, entry_mac
from audit.context import audit_note, command_audit
from audit.models import AuditCheckpoint, AuditEntry
from audit.sanitize import legacy_personal_digest, personal_digest
from audit.services import audit_checkpoint_write, audit_entry_write, audit_fields, audit_personal_erase
from audit.stream import stream_path
from audit.verify import audit_log_verify
from tests.audit.conftest import entries_table_gone
from tests.conftest import PASSWORD, bearer, obtain

pytestmark = pytest.mark.database


@pytest.fixture
def checkpoint_every(settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_CHECKPOINT_EVERY": 3}
    return 3


def write(count: int, **overrides) -> list[dict]:
    fields = {
        "action": "query",
        "outcome": "allowed",
        "auth_kind": "jwt",
        "actor_id": 1,
        "username": "alice",
        "method": "POST",
        "status": 200,
        "client_ip": "192.0.2.10",
        "user_agent": "client/1.0",
        "detail": {"screening": "clean"},
        **overrides,
    }
    return [audit_entry_write(audit_fields(path=f"/api/v1/query/{number}", **fields)) for number in range(count)]


@pytest.fixture
def log() -> list[AuditEntry]:
    """Eight entries of one chain, in sequence order."""
    written = write(8)
    return list(AuditEntry.objects.filter(chain_id=written[0]["chain_id"]).order_by("seq"))


@pytest.fixture
def request_log(api, user) -> list[AuditEntry]:
    """A log made by real requests: probes, failed logins, a login and /me/."""
    assert api.get("/healthz").status_code == 200
    for _ in range(2):
        response = api.post("/api/v1/auth/token/", {"username": user.username, "password": "wrong-" + PASSWORD}, format="json")
        assert response.status_code == 401
    access = obtain(api, user.username)["access"]
    for _ in range(2):
        assert api.get("/api/v1/auth/me/", **bearer(access)).status_code == 200
    return list(AuditEntry.objects.order_by("seq"))


def verify_passes(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_audit_chain", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def verify_fails(*args: str) -> str:
    """Run the command expecting failure; returns what it wrote to stderr."""
    err = io.StringIO()
    with pytest.raises(CommandError, match="NOT intact"):
        call_command("verify_audit_chain", *args, stdout=io.StringIO(), stderr=err)
    return err.getvalue()


def problems():
    return audit_log_verify(key=audit_key(), stream_paths=[stream_path()]).problems


def covered(row: AuditEntry) -> dict:
    return {name: getattr(row, name) for name in COVERED_FIELDS}


def plain_sha256(fields: dict) -> str:
    """What an attacker without the key computes: a plain hash of the content."""
    document = [str(fields[name]) for name in COVERED_FIELDS]
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()


def wrong_key_hmac(fields: dict) -> str:
    return entry_mac(fields, b"attacker-guess-of-the-audit-key")


def rechain(entry_ids: list, mac_function) -> None:
    """Recompute the MAC and prev_mac of these entries (in order) the way an attacker with database access would."""
    previous = AuditEntry.objects.get(id=entry_ids[0]).prev_mac
    for entry_id in entry_ids:
        row = AuditEntry.objects.get(id=entry_id)
        row.prev_mac = previous
        mac = mac_function(covered(row))
        AuditEntry.objects.filter(id=entry_id).update(prev_mac=previous, mac=mac)
        previous = mac


# ---------------------------------------------------------------------------
# intact logs
# ---------------------------------------------------------------------------


@pytest.mark.redis
def test_request_log_verifies_intact(request_log):
    assert len(request_log) == 6
    output = verify_passes()
    assert "intact" in output
    assert "6 entries in 1 chain(s)" in output


def test_log_with_checkpoints_verifies_intact(checkpoint_every):
    write(8)
    assert AuditCheckpoint.objects.count() == 2
    assert "8 entries" in verify_passes()


def test_several_chains_verify_intact(monkeypatch):
    write(3)
    monkeypatch.setattr(chain, "_writer", None)
    write(2)
    report = audit_log_verify(key=audit_key(), stream_paths=[stream_path()])
    assert report.intact, report.problems
    assert (report.entries, report.chains) == (5, 2)


@pytest.mark.parametrize("address", ["::ffff:192.0.2.1", "2001:DB8:0:0::1", "fe80::1%eth0"])
def test_request_from_an_ipv6_client_verifies_intact(api, address):
    # A dual-stack server reports IPv4 clients as IPv4-mapped IPv6 addresses.
    assert api.get("/healthz", REMOTE_ADDR=address).status_code == 200
    report = audit_log_verify(key=audit_key(), stream_paths=[stream_path()])
    assert report.intact, [str(problem) for problem in report.problems]


@pytest.mark.parametrize("score", [0.1, 0.8333333333333334, 1e-7, 1e16, -0.0, 2**52])
def test_entry_with_numeric_verdicts_verifies_intact(score):
    write(1, detail={"screening": {"score": score}})
    report = audit_log_verify(key=audit_key(), stream_paths=[stream_path()])
    assert report.intact, [str(problem) for problem in report.problems]


def test_entry_rolled_back_with_its_callers_transaction_leaves_the_log_verifiable(transactional_db):
    write(1)
    # A script calls a service (no request or command context) inside its own transaction, which then fails.
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_note("user.create", actor="system", reason="", user="carol")
        raise RuntimeError("the script's next step failed")
    write(1)
    report = audit_log_verify(key=audit_key(), stream_paths=[stream_path()])
    assert report.intact, [str(problem) for problem in report.problems]


def test_command_entry_rolled_back_with_its_callers_transaction_leaves_the_log_verifiable(transactional_db):
    write(1)
    # A script runs a state-changing command inside its own transaction, which then fails: the command's entry
    # (written as the command ends, inside that transaction) rolls back with it.
    with pytest.raises(RuntimeError), transaction.atomic():
        with command_audit("demo"):
            audit_note("thing.create", thing="t-1", reason="setup")
        raise RuntimeError("the script's next step failed")
    write(2)
    audit_checkpoint_write()
    assert not AuditEntry.objects.filter(action="command.demo").exists()
    report = audit_log_verify(key=audit_key(), stream_paths=[stream_path()])
    assert report.intact, [str(problem) for problem in report.problems]


def test_entry_committed_with_its_callers_transaction_is_signed_when_it_commits(transactional_db):
    with transaction.atomic():
        sealed = audit_entry_write(audit_fields(action="command.demo", outcome="allowed", auth_kind="command"))
        assert not AuditCheckpoint.objects.filter(chain_id=sealed["chain_id"]).exists()  # not before it commits
    checkpoint = AuditCheckpoint.objects.get(chain_id=sealed["chain_id"])
    assert (checkpoint.seq, checkpoint.entry_mac) == (1, sealed["mac"])
    assert verify_passes().startswith("audit log intact")

    AuditEntry.objects.filter(id=sealed["id"]).delete()  # an intruder removes it
    assert "TRUNCATED" in verify_fails() or "DELETED" in verify_fails()


def test_wrong_key_fails_verification(log, monkeypatch):
    from audit.chain import AuditKeyRing

    wrong = AuditKeyRing.parse("not-the-audit-key")
    monkeypatch.setattr("audit.management.commands.verify_audit_chain.audit_key_ring", lambda: wrong)
    assert "ALTERED" in verify_fails()


# ---------------------------------------------------------------------------
# edits, deletions, insertions, truncation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", 403),
        ("path", "/api/v1/elsewhere/"),
        ("outcome", "denied"),
        ("detail", {"screening": "blocked"}),
        ("action", "auth.me"),
        ("actor_id", 2),
        ("created_at", timezone.now()),
    ],
)
def test_edited_row_is_named_as_altered(log, field, value):
    target = log[3]
    AuditEntry.objects.filter(id=target.id).update(**{field: value})
    stderr = verify_fails()
    assert f"ALTERED: entry {target.id} (chain {target.chain_id}, seq 4)" in stderr


@pytest.mark.redis
def test_edited_request_entry_is_named_as_altered(request_log):
    failed_login = next(row for row in request_log if row.status == 401)
    AuditEntry.objects.filter(id=failed_login.id).update(status=200, outcome="allowed")
    assert str(failed_login.id) in verify_fails()
    [problem] = problems()
    assert (problem.kind, problem.entry_id, problem.seq) == ("altered", str(failed_login.id), failed_login.seq)


def test_edited_last_row_is_named_as_altered(log):
    AuditEntry.objects.filter(id=log[-1].id).update(status=500)
    [problem] = problems()
    assert (problem.kind, problem.entry_id) == ("altered", str(log[-1].id))


def test_deleted_middle_row_is_named_as_missing(log):
    AuditEntry.objects.filter(id=log[4].id).delete()
    stderr = verify_fails()
    assert f"MISSING: chain {log[4].chain_id}: entry seq 5 is missing" in stderr
    [problem] = problems()
    assert (problem.kind, problem.seq) == ("missing", 5)


def test_deleted_first_row_is_named_as_missing(log):
    AuditEntry.objects.filter(id=log[0].id).delete()
    [problem] = problems()
    assert (problem.kind, problem.seq) == ("missing", 1)


def test_row_inserted_in_the_middle_is_named(log):
    chain_id = log[0].chain_id
    for row in reversed(log[3:]):  # make room at seq 4 without breaking the unique (chain, seq)
        AuditEntry.objects.filter(id=row.id).update(seq=row.seq + 1)
    fields = audit_fields(action="query", outcome="allowed", auth_kind="jwt", path="/api/v1/query/planted", status=200)
    forged = {**fields, "chain_id": chain_id, "seq": 4, "prev_mac": log[2].mac}
    AuditEntry.objects.create(**forged, mac=plain_sha256(forged))
    stderr = verify_fails()
    assert f"INSERTED: entry {fields['id']} (chain {chain_id}, seq 4)" in stderr


def test_row_appended_with_a_made_up_mac_is_detected(log):
    fields = audit_fields(action="query", outcome="allowed", auth_kind="jwt", path="/api/v1/query/planted", status=200)
    forged = {**fields, "chain_id": log[0].chain_id, "seq": 9, "prev_mac": log[-1].mac}
    AuditEntry.objects.create(**forged, mac=plain_sha256(forged))
    assert str(fields["id"]) in verify_fails()
    [problem] = problems()
    assert problem.kind in {"inserted", "altered"}
    assert (problem.entry_id, problem.seq) == (str(fields["id"]), 9)


def test_row_planted_in_a_chain_of_its_own_is_detected(log):
    fields = audit_fields(action="query", outcome="allowed", auth_kind="jwt", path="/planted", status=200)
    forged = {**fields, "chain_id": "planted-chain", "seq": 1, "prev_mac": "0" * 64}
    AuditEntry.objects.create(**forged, mac=wrong_key_hmac(forged))
    stderr = verify_fails()
    assert str(fields["id"]) in stderr and "planted-chain" in stderr


def test_truncated_tail_after_a_checkpoint_is_detected(checkpoint_every, log):
    AuditEntry.objects.filter(chain_id=log[0].chain_id, seq__gte=5).delete()
    stderr = verify_fails()
    assert f"TRUNCATED: chain {log[0].chain_id}: entries 5..6 are missing" in stderr


def test_truncated_tail_is_detected_from_the_stream_when_checkpoint_rows_are_deleted_too(checkpoint_every, log):
    AuditEntry.objects.filter(chain_id=log[0].chain_id, seq__gte=5).delete()
    AuditCheckpoint.objects.all().delete()
    assert "TRUNCATED" in verify_fails()


def test_deleted_chain_is_detected_from_a_shipped_stream(checkpoint_every, tmp_path, monkeypatch):
    doomed = write(4)
    monkeypatch.setattr(chain, "_writer", None)
    write(2)
    shipped = tmp_path / "siem-copy.jsonl"
    shutil.copy(stream_path(), shipped)
    # The attacker removes the chain, its checkpoint rows and the local stream file.
    AuditEntry.objects.filter(chain_id=doomed[0]["chain_id"]).delete()
    AuditCheckpoint.objects.filter(chain_id=doomed[0]["chain_id"]).delete()
    stream_path().unlink()
    stderr = verify_fails("--stream", str(shipped))
    assert f"TRUNCATED: chain {doomed[0]['chain_id']}: entries 1..3 are missing" in stderr


@pytest.mark.parametrize("mac_function", [plain_sha256, wrong_key_hmac], ids=["plain-sha256", "wrong-key-hmac"])
def test_edit_with_recomputed_hashes_is_detected(log, mac_function):
    target = log[2]
    AuditEntry.objects.filter(id=target.id).update(status=200, outcome="allowed", detail={})
    rechain([row.id for row in log[2:]], mac_function)
    stderr = verify_fails()
    assert f"ALTERED: entry {target.id} (chain {target.chain_id}, seq 3)" in stderr


@pytest.mark.parametrize("mac_function", [plain_sha256, wrong_key_hmac], ids=["plain-sha256", "wrong-key-hmac"])
def test_deletion_with_renumbered_and_rehashed_rows_is_detected(log, mac_function):
    target = log[4]
    AuditEntry.objects.filter(id=target.id).delete()
    for row in log[5:]:
        AuditEntry.objects.filter(id=row.id).update(seq=row.seq - 1)
    rechain([row.id for row in log[5:]], mac_function)
    [problem] = problems()
    assert (problem.kind, problem.entry_id) == ("altered", str(log[5].id))


@pytest.mark.parametrize("kind", ["checkpoint", "anchor"])
def test_forged_checkpoint_row_is_detected(log, kind):
    # A forged anchor would otherwise hide the deletion of the chain's first entries.
    AuditEntry.objects.filter(chain_id=log[0].chain_id, seq__lte=3).delete()
    AuditCheckpoint.objects.create(
        chain_id=log[0].chain_id, seq=3, entry_mac=log[2].mac, kind=kind, created_at=timezone.now(), mac=hashlib.sha256(b"x").hexdigest()
    )
    stderr = verify_fails()
    assert f"FORGED_CHECKPOINT: chain {log[0].chain_id}: a {kind} at seq 3 (database) has an invalid signature" in stderr


def test_forged_checkpoint_in_the_stream_is_detected(log):
    forged = {
        "type": "checkpoint",
        "chain_id": log[0].chain_id,
        "seq": 8,
        "entry_mac": log[-1].mac,
        "kind": "checkpoint",
        "created_at": timezone.now().isoformat(),
        "mac": hashlib.sha256(b"x").hexdigest(),
    }
    with open(stream_path(), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(forged) + "\n")
    assert f"FORGED_CHECKPOINT: chain {log[0].chain_id}: a checkpoint at seq 8 ({stream_path()})" in verify_fails()


def test_each_broken_chain_is_reported(log, monkeypatch):
    monkeypatch.setattr(chain, "_writer", None)
    other = write(3)
    AuditEntry.objects.filter(id=log[1].id).update(status=404)
    AuditEntry.objects.filter(id=other[1]["id"]).update(path="/")
    stderr = verify_fails()
    assert str(log[1].id) in stderr and str(other[1]["id"]) in stderr


# ---------------------------------------------------------------------------
# personal data
# ---------------------------------------------------------------------------


def test_personal_data_erasure_keeps_the_log_verifiable(log):
    assert audit_personal_erase(username="alice") == 8
    assert set(AuditEntry.objects.values_list("username", "client_ip", "user_agent")) == {("", None, "")}
    assert "8 entries" in verify_passes()


def test_erasure_by_ip_address_leaves_other_people_alone(log):
    write(2, client_ip="198.51.100.9", username="bob")
    assert audit_personal_erase(client_ip="198.51.100.9") == 2
    assert AuditEntry.objects.filter(username="alice", personal_erased_at__isnull=True).count() == 8
    assert "10 entries" in verify_passes()


def test_a_blanking_without_a_signed_erasure_is_detected(log):
    """An intruder blanks who did what and sets the erasure time himself: without the key he cannot sign it."""
    AuditEntry.objects.filter(id=log[5].id).update(username="", client_ip=None, user_agent="", personal_erased_at=timezone.now())
    assert f"ALTERED: entry {log[5].id}" in verify_fails()


def test_an_erasure_mark_copied_from_another_entry_is_detected(log):
    audit_personal_erase(username="alice")
    genuine = AuditEntry.objects.get(id=log[0].id)
    write(1)
    [fresh] = AuditEntry.objects.filter(personal_erased_at__isnull=True)
    AuditEntry.objects.filter(id=fresh.id).update(
        username="", user_agent="", personal_erased_at=genuine.personal_erased_at, personal_erasure_mac=genuine.personal_erasure_mac
    )
    assert f"ALTERED: entry {fresh.id}" in verify_fails()


def test_personal_digests_are_keyed_so_an_erased_address_cannot_be_guessed_back(log):
    """The salt is stored beside the digest: a plain hash of salt and address would give the address back."""
    write(1, client_ip="198.51.100.9")
    [entry] = AuditEntry.objects.filter(client_ip="198.51.100.9")
    assert entry.client_ip_digest != hashlib.sha256(f"{entry.personal_salt}\x00198.51.100.9".encode()).hexdigest()
    assert entry.client_ip_digest == personal_digest(entry.personal_salt, "198.51.100.9", audit_key())


def test_entries_with_unkeyed_digests_from_before_still_verify(log):
    """Entries written before digests were keyed (plain SHA-256) keep verifying, and keep detecting changes."""
    writer = chain.chain_writer()
    fields = audit_fields(action="query", outcome="allowed", auth_kind="jwt", username="carol", client_ip="192.0.2.4")
    salt = fields["personal_salt"]
    fields.update(
        username_digest=legacy_personal_digest(salt, "carol"), client_ip_digest=legacy_personal_digest(salt, "192.0.2.4"),
        user_agent_digest=legacy_personal_digest(salt, ""),
    )
    sealed = writer.seal(fields, audit_key())
    AuditEntry.objects.create(**sealed)
    writer.settle(sealed["seq"])
    assert "9 entries" in verify_passes()
    AuditEntry.objects.filter(id=sealed["id"]).update(username="mallory")
    assert f"ALTERED: entry {sealed['id']}" in verify_fails()


def test_the_erasure_command_records_why_and_how_many_but_not_whom(log):
    out = io.StringIO()
    call_command("erase_audit_personal_data", "--username", "alice", "--reason", "request DSR-42", stdout=out)
    assert "personal data erased from 8 audit entries" in out.getvalue()
    command = AuditEntry.objects.get(action="command.erase_audit_personal_data")
    assert command.detail == {"reason": "request DSR-42", "by": ["username"], "erased_entries": 8}
    assert "alice" not in json.dumps(command.detail) and command.username == ""
    assert "9 entries" in verify_passes()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["--reason", "x"], "Name the person"), (["--username", "alice", "--reason", " "], "must not be empty"),
     (["--client-ip", "not-an-ip", "--reason", "x"], "not an IP address")],
)
def test_the_erasure_command_refuses_bad_input(log, arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("erase_audit_personal_data", *arguments, stdout=io.StringIO())
    assert AuditEntry.objects.filter(personal_erased_at__isnull=False).count() == 0


def test_erasure_waits_for_spooled_entries_so_a_later_replay_cannot_bring_the_person_back(log):
    """Entries spooled while the database was down are not in it yet: erased now, replaying them later would store
    the person's data again, unerased."""
    with entries_table_gone():
        [spooled] = write(1, client_ip="198.51.100.9")
    with pytest.raises(ValueError, match="1 audit entry waits in the spool.*replay_audit_spool"):
        audit_personal_erase(username="alice")
    assert AuditEntry.objects.filter(personal_erased_at__isnull=False).count() == 0
    err = io.StringIO()
    with pytest.raises(CommandError, match="waits in the spool"):
        call_command("erase_audit_personal_data", "--username", "alice", "--reason", "DSR-42", stdout=io.StringIO(), stderr=err)
    assert AuditEntry.objects.get(action="command.erase_audit_personal_data").outcome == "denied"

    call_command("replay_audit_spool", stdout=io.StringIO())
    assert audit_personal_erase(username="alice") == 9
    assert AuditEntry.objects.get(id=spooled["id"]).username == ""
    assert "11 entries" in verify_passes()  # the log, the spooled entry and the two commands' entries


def test_erasure_refuses_when_it_cannot_tell_what_waits_in_the_spool(log):
    stream_path().parent.mkdir(parents=True, exist_ok=True)
    (stream_path().parent / "spool.jsonl").mkdir()  # the spool's place holds something unreadable as a file
    with pytest.raises(CommandError, match="spool cannot be read"):
        call_command("erase_audit_personal_data", "--username", "alice", "--reason", "DSR-42", stdout=io.StringIO())
    assert AuditEntry.objects.filter(personal_erased_at__isnull=False).count() == 0


@pytest.mark.parametrize(("field", "value"), [("username", ""), ("client_ip", None), ("user_agent", "")])
def test_personal_field_erased_without_the_erasure_mark_is_detected(log, field, value):
    AuditEntry.objects.filter(id=log[5].id).update(**{field: value})
    assert f"ALTERED: entry {log[5].id}" in verify_fails()


@pytest.mark.parametrize(("field", "value"), [("username", "mallory"), ("client_ip", "198.51.100.7"), ("user_agent", "curl/8")])
def test_personal_field_replaced_is_detected(log, field, value):
    AuditEntry.objects.filter(id=log[5].id).update(**{field: value})
    assert f"ALTERED: entry {log[5].id}" in verify_fails()


@pytest.mark.parametrize(("field", "value"), [("username", "mallory"), ("client_ip", "198.51.100.7"), ("user_agent", "curl/8")])
def test_personal_field_replaced_under_an_erasure_mark_is_detected(log, field, value):
    # Erasure blanks personal data; it must not become a licence to rewrite it.
    AuditEntry.objects.filter(id=log[5].id).update(personal_erased_at=timezone.now(), **{field: value})
    assert f"ALTERED: entry {log[5].id}" in verify_fails()


@pytest.mark.redis
def test_username_of_a_request_entry_changed_to_another_user_is_detected(request_log, make_user):
    make_user("bob")
    me = next(row for row in request_log if row.action == "auth.me")
    assert me.username == "alice"
    AuditEntry.objects.filter(id=me.id).update(username="bob")
    assert f"ALTERED: entry {me.id}" in verify_fails()


def test_a_junk_checkpoint_does_not_hide_the_deletion_it_was_planted_beside(log):
    """The intruder deletes an entry and plants an unsigned checkpoint row: both are named, the deletion first."""
    AuditEntry.objects.filter(id=log[4].id).delete()
    AuditCheckpoint.objects.create(
        chain_id=log[0].chain_id, seq=8, entry_mac=log[-1].mac, kind="checkpoint", created_at=timezone.now(), mac="0" * 64
    )
    stderr = verify_fails()
    assert [line.split(":")[0] for line in stderr.splitlines()] == ["MISSING", "FORGED_CHECKPOINT"]
    assert "entry seq 5 is missing" in stderr
    with pytest.raises(CommandError, match="NOT intact: 1 chain\\(s\\) broken"):
        call_command("verify_audit_chain", stdout=io.StringIO(), stderr=io.StringIO())
