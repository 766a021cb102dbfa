"""Service API keys end to end: created once, presented as `Authorization: ApiKey`, passing the same scope, rate-limit,
revocation and audit layers as JWTs; expired, revoked and malformed keys refused in the error shape."""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.api_keys import API_KEY_CACHE_SECONDS
from accounts.models import ApiKey, Scope
from accounts.services import api_key_create, api_key_revoke, user_deactivate
from audit.models import AuditEntry
from ragsecure.errors import ValidationFailed
from tests.conftest import assert_error

pytestmark = [pytest.mark.redis, pytest.mark.database]
KEY_SHAPE = re.compile(r"^rsk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$")


def create(user, *, scopes=None, days: int = 30) -> str:
    expires_at = timezone.now() + timedelta(days=days)
    return api_key_create(user=user, name="billing-service", scopes=scopes, expires_at=expires_at, actor=None).raw


def key_header(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"ApiKey {raw}"}


def test_the_command_prints_the_key_once_and_stores_only_a_digest(user):
    out = io.StringIO()
    call_command("create_api_key", "alice", "--name", "billing-service", "--scope", "query:read", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert KEY_SHAPE.fullmatch(raw)
    stored = ApiKey.objects.get(user=user)
    assert stored.scopes == ["query:read"] and stored.key_id in raw
    assert raw.split("_")[-1] not in str(ApiKey.objects.filter(pk=stored.pk).values().first())


def test_a_key_authenticates_as_its_user_with_its_scopes(api, user):
    raw = create(user, scopes=["documents:read"])
    response = api.get("/api/v1/auth/me/", **key_header(raw))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["username"] == "alice" and body["scopes"] == ["documents:read"]
    assert body["token"]["jti"] == f"ak:{raw.split('_')[1]}"
    assert api.get("/api/v1/documents/", **key_header(raw)).status_code == 200
    denied = api.post("/api/v1/query/", {"query": "anything"}, format="json", **key_header(raw))
    assert_error(denied, 403, "insufficient_scope")


def test_scopes_follow_the_users_current_grants(api, user):
    raw = create(user, scopes=["documents:read", "query:read"])
    user.scopes.remove(Scope.objects.get(name="documents:read"))
    from accounts.services import user_state_invalidate

    user_state_invalidate(user_ids=[user.pk])
    assert_error(api.get("/api/v1/documents/", **key_header(raw)), 403, "insufficient_scope")


@pytest.mark.parametrize(
    "raw",
    ["rsk_", "rsk_abc", "Bearer x", "rsk_" + "a" * 12 + "_" + "b" * 42, "rsk_" + "A" * 12 + "_" + "b" * 43, "x" * 8192, "../../etc/passwd"],
)
def test_a_malformed_key_is_token_invalid(api, user, raw):
    assert_error(api.get("/api/v1/auth/me/", **key_header(raw)), 401, "token_invalid")


def test_an_unknown_key_or_a_wrong_secret_is_token_invalid(api, user):
    raw = create(user)
    unknown = "rsk_" + "z" * 12 + raw[16:]
    wrong = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    assert_error(api.get("/api/v1/auth/me/", **key_header(unknown)), 401, "token_invalid")
    assert_error(api.get("/api/v1/auth/me/", **key_header(wrong)), 401, "token_invalid")


def test_an_expired_key_is_refused(api, user):
    raw = create(user)
    ApiKey.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))
    from accounts.api_keys import api_key_cache_forget

    api_key_cache_forget(raw.split("_")[1])
    assert_error(api.get("/api/v1/auth/me/", **key_header(raw)), 401, "token_expired")


def test_a_revoked_key_stops_at_once(api, user):
    raw = create(user)
    assert api.get("/api/v1/auth/me/", **key_header(raw)).status_code == 200  # cached now
    assert api_key_revoke(keys=list(ApiKey.objects.filter(user=user)), actor=None, reason="leaked in a log") == 1
    assert_error(api.get("/api/v1/auth/me/", **key_header(raw)), 401, "token_revoked")


def test_a_deactivated_user_s_keys_stop(api, user):
    raw = create(user)
    user_deactivate(users=[user], actor=None, reason="service retired")
    assert_error(api.get("/api/v1/auth/me/", **key_header(raw)), 401, "token_revoked")


def test_the_tier_limit_applies(api, user):
    raw = create(user)
    statuses = [api.get("/api/v1/auth/me/", **key_header(raw)).status_code for _ in range(user.tier.requests_per_minute + 2)]
    assert statuses.count(200) == user.tier.requests_per_minute and statuses[-1] == 429


def test_the_audit_entry_names_the_key_never_the_secret(api, user):
    raw = create(user)
    response = api.get("/api/v1/auth/me/", **key_header(raw))
    entry = AuditEntry.objects.get(request_id=response["X-Request-ID"])
    assert entry.auth_kind == "api_key" and entry.token_jti == f"ak:{raw.split('_')[1]}" and entry.username == "alice"
    stored = str(AuditEntry.objects.filter(pk=entry.pk).values().first())
    assert raw.split("_")[-1] not in stored


def test_last_used_is_written_once_per_interval(api, user, django_assert_max_num_queries):
    raw = create(user)
    api.get("/api/v1/auth/me/", **key_header(raw))
    first = ApiKey.objects.get(user=user).last_used_at
    assert first is not None
    api.get("/api/v1/auth/me/", **key_header(raw))
    assert ApiKey.objects.get(user=user).last_used_at == first


def test_a_warm_key_costs_no_more_database_queries_than_a_jwt(api, user, tokens):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    raw = create(user)

    def queries(headers: dict) -> list[str]:
        api.get("/api/v1/documents/", **headers)  # warm the caches
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/api/v1/documents/", **headers).status_code == 200
        return [query["sql"].split(" ")[0] + " " + query["sql"].split('"')[1] for query in captured.captured_queries]

    with_jwt = queries({"HTTP_AUTHORIZATION": f"Bearer {tokens['access']}"})
    with_key = queries(key_header(raw))
    assert with_key == with_jwt
    assert not any("accounts_apikey" in query for query in with_key)


def test_two_active_keys_at_most(user):
    create(user)
    create(user)
    with pytest.raises(ValidationFailed):
        create(user)
    api_key_revoke(keys=[ApiKey.objects.filter(user=user).first()], actor=None, reason="rotated")
    create(user)


def test_scopes_not_granted_are_refused(user):
    with pytest.raises(ValidationFailed):
        create(user, scopes=["admin"])
    with pytest.raises(CommandError, match="Not granted"):
        call_command("create_api_key", "alice", "--name", "x", "--scope", "admin", stdout=io.StringIO())


def test_a_key_cannot_log_out(api, user):
    raw = create(user)
    response = api.post("/api/v1/auth/token/revoke/", {"refresh": "x"}, format="json", **key_header(raw))
    assert_error(response, 403, "permission_denied")


def test_the_cache_bounds_a_revocation_redis_never_heard_of():
    """If the cache could not be told, a revoked key still passes for at most this long."""
    assert API_KEY_CACHE_SECONDS <= 30
