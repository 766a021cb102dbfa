"""Rotating the audit HMAC key: entries and checkpoints name the key that signed them, and verify_audit_chain verifies
one chain across a rotation with every key of the ring, still catching an edit on either side of it."""

import io

import pytest
from django.core.management import call_command

from audit.chain import AuditKeyRing, audit_key, audit_key_id, audit_key_ring
from audit.models import AuditCheckpoint, AuditEntry
from audit.services import audit_checkpoint_write, audit_personal_erase
from ragsecure.secrets import secrets_provider
from tests.audit.test_verify import verify_fails, verify_passes, write

pytestmark = pytest.mark.database
SECRET = "audit-hmac-key"


@pytest.fixture
def restore_audit_key():
    original = secrets_provider().get(SECRET)
    yield
    secrets_provider().put(SECRET, original)


def rotate() -> str:
    out = io.StringIO()
    call_command("rotate_audit_key", stdout=out)
    return out.getvalue()


@pytest.fixture
def rotated_log(restore_audit_key) -> dict:
    """One chain: three entries under the first key, a rotation, three under the second, then a checkpoint."""
    before = write(3)
    first = audit_key().key_id
    rotate()
    second = audit_key().key_id
    after = write(3)
    audit_checkpoint_write()
    return {"before": before, "after": after, "first": first, "second": second}


def test_entries_name_the_key_that_signed_them(rotated_log):
    assert rotated_log["first"] != rotated_log["second"]
    chain_ids = {entry["chain_id"] for entry in rotated_log["before"] + rotated_log["after"]}
    assert len(chain_ids) == 1  # one chain carries on across the rotation
    stored = {str(entry.id): entry.key_id for entry in AuditEntry.objects.all()}
    assert {stored[str(entry["id"])] for entry in rotated_log["before"]} == {rotated_log["first"]}
    assert {stored[str(entry["id"])] for entry in rotated_log["after"]} == {rotated_log["second"]}
    assert AuditCheckpoint.objects.get(kind="checkpoint").key_id == rotated_log["second"]


def test_the_chain_verifies_across_the_rotation(rotated_log):
    assert "audit log intact: " in verify_passes()
    assert set(audit_key_ring().keys) == {rotated_log["first"], rotated_log["second"]}


@pytest.mark.parametrize("side", ["before", "after"])
def test_an_edit_on_either_side_of_the_rotation_is_caught(rotated_log, side):
    entry_id = rotated_log[side][1]["id"]
    AuditEntry.objects.filter(id=entry_id).update(path="/api/v1/forged/")
    assert f"entry {entry_id}" in verify_fails()


def test_an_entry_relabelled_with_another_key_is_caught(rotated_log):
    entry_id = rotated_log["before"][0]["id"]
    AuditEntry.objects.filter(id=entry_id).update(key_id=rotated_log["second"])
    assert "ALTERED" in verify_fails()


def test_a_ring_without_the_old_key_cannot_vouch_for_its_entries(rotated_log):
    ring = audit_key_ring()
    current_only = AuditKeyRing({ring.active.key_id: bytes(ring.active)}, ring.active.key_id)
    secrets_provider().put(SECRET, current_only.serialise())
    assert "ALTERED" in verify_fails()


def test_erasure_after_the_rotation_still_verifies(rotated_log):
    assert audit_personal_erase(username="alice") == 6
    assert "audit log intact: " in verify_passes()


def test_entries_written_before_keys_had_ids_still_verify(restore_audit_key):
    written = write(3)
    AuditEntry.objects.filter(id__in=[entry["id"] for entry in written]).update(key_id="")
    rotate()
    write(2)
    assert "audit log intact: " in verify_passes()


def test_a_plain_key_is_a_ring_of_one():
    ring = AuditKeyRing.parse("plain-secret-value")
    assert list(ring.keys) == [audit_key_id(b"plain-secret-value")] and bytes(ring.active) == b"plain-secret-value"
    assert AuditKeyRing.parse(ring.serialise()).active.key_id == ring.active.key_id


def test_a_malformed_ring_refuses_requests_in_the_error_shape_and_names_no_value(restore_audit_key, api):
    secrets_provider().put(SECRET, '{"active": "k-missing", "keys": {}}')
    response = api.get("/api/v1/auth/me/")
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
