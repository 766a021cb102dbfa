"""Staff sign-in under the API's lockout: wrong passwords for one name from one address earn a cool-off during which
even the right password is refused, with a plain message; every failure is audited as denied with the claimed name."""

import pytest
from django.test import Client

from audit.models import AuditEntry
from tests.accounts.test_lockout import set_lockout

pytestmark = [pytest.mark.redis, pytest.mark.database]
LOGIN = "/admin/login/"
STAFF_PASSWORD = "a-long-staff-password-0123"
FREE_FAILURES = 3


@pytest.fixture
def staff(transactional_db, settings):
    from accounts.models import User

    set_lockout(settings, FREE_FAILURES=FREE_FAILURES, BASE_COOLOFF=60)
    return User.objects.create_superuser(username="root", password=STAFF_PASSWORD)


def sign_in(password: str, *, ip: str = "203.0.113.70", username: str = "root"):
    client = Client(HTTP_HOST="localhost", REMOTE_ADDR=ip)
    response = client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})
    return client, response


def signed_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_thirty_wrong_passwords_then_the_right_one_stays_locked_out(staff):
    """The finding: 30 wrong passwords from one IP, then the right one, signed in."""
    for _ in range(30):
        sign_in("wrong-password-123")
    client, response = sign_in(STAFF_PASSWORD)
    assert response.status_code == 200 and not signed_in(client)
    assert b"Too many failed sign-ins" in response.content


def test_the_right_password_within_the_budget_signs_in(staff):
    for _ in range(FREE_FAILURES - 1):
        sign_in("wrong-password-123")
    client, response = sign_in(STAFF_PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_another_address_is_not_locked_out(staff):
    for _ in range(FREE_FAILURES + 2):
        sign_in("wrong-password-123")
    client, _ = sign_in(STAFF_PASSWORD, ip="198.51.100.71")
    assert signed_in(client)


def test_failures_are_audited_as_denied_with_the_claimed_name_escaped(staff):
    _, response = sign_in("wrong-password-123", username="<script>root</script>")
    entry = AuditEntry.objects.get(request_id=response["X-Request-ID"])
    assert entry.action == "admin.login" and entry.outcome == "denied" and entry.status == 200
    assert entry.username == "<script>root</script>" or "script" in entry.username
    assert "wrong-password-123" not in str(AuditEntry.objects.filter(pk=entry.pk).values().first())


def test_a_locked_attempt_is_audited_as_throttled(staff):
    for _ in range(FREE_FAILURES):
        sign_in("wrong-password-123")
    _, response = sign_in(STAFF_PASSWORD)
    entry = AuditEntry.objects.get(request_id=response["X-Request-ID"])
    assert entry.outcome == "throttled" and "login_lockout" in entry.detail


def test_revoking_everything_a_user_holds_ends_their_admin_sessions(staff):
    from accounts.services import user_tokens_revoke

    client, response = sign_in(STAFF_PASSWORD)
    assert response.status_code == 302 and signed_in(client)
    user_tokens_revoke(user=staff, actor=None, reason="laptop stolen")
    assert not signed_in(client)

