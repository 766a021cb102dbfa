"""Revocation and the Redis user-state cache, seen through the API: changes bite on the next request, Redis or not."""

import io

import pytest
from django_redis import get_redis_connection
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts import revocation
from accounts.authentication import BearerTokenAuthentication
from accounts.models import CacheSyncState, Scope, TokenFamily, User
from accounts.services import access_token_revoke, token_family_revoke, user_deactivate, user_tokens_revoke
from accounts.tokens import AccessToken
from ragsecure.errors import TokenRevoked
from ragsecure.redis_gate import redis_gate
from ragsecure.settings.base import cache_settings
from tests.conftest import assert_error, bearer, obtain

pytestmark = [pytest.mark.redis, pytest.mark.database]

ME_URL = "/api/v1/auth/me/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
DEAD_REDIS = "redis://127.0.0.1:1/0"
NEW_PASSWORD = "another-long-password-77"


class DocumentsWriteProbe(APIView):
    """A stand-in for an endpoint that needs `documents:write`."""

    required_scopes = ("documents:write",)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


def me(api, access: str):
    return api.get(ME_URL, **bearer(access))


def refresh(api, refresh_token: str):
    return api.post(REFRESH_URL, {"refresh": refresh_token}, format="json")


def probe(access: str):
    request = APIRequestFactory().get("/probe/", **bearer(access))
    response = DocumentsWriteProbe.as_view()(request)
    response.render()
    return response


def authenticate(access: str):
    request = Request(APIRequestFactory().get(ME_URL, **bearer(access)))
    return BearerTokenAuthentication().authenticate(request)


def redis():
    return get_redis_connection("default")


@pytest.fixture
def redis_switch(settings):
    """Turn the configured Redis off (a dead port) and on again within a test."""
    live = (settings.CACHES, settings.REDIS_URL)

    class Switch:
        def down(self) -> None:
            settings.CACHES = cache_settings(DEAD_REDIS)
            settings.REDIS_URL = DEAD_REDIS
            redis_gate.reset()

        def up(self) -> None:
            settings.CACHES, settings.REDIS_URL = live
            redis_gate.reset()

    yield Switch()
    redis_gate.reset()


# ---------------------------------------------------------------------------
# Revoke everything, password change, deactivation
# ---------------------------------------------------------------------------


def test_user_tokens_revoke_refuses_every_login(api, user):
    first = obtain(api, "alice")
    second = obtain(api, "alice")
    assert me(api, first["access"]).status_code == 200
    assert me(api, second["access"]).status_code == 200

    user_tokens_revoke(user=user, actor=None, reason="compromised")

    assert_error(me(api, first["access"]), 401, "token_revoked")
    assert_error(me(api, second["access"]), 401, "token_revoked")
    assert_error(refresh(api, first["refresh"]), 401, "token_revoked")
    assert_error(refresh(api, second["refresh"]), 401, "token_revoked")


def test_login_after_user_tokens_revoke_works(api, user, tokens):
    user_tokens_revoke(user=user, actor=None, reason="compromised")

    fresh = obtain(api, "alice")

    assert me(api, fresh["access"]).status_code == 200
    assert refresh(api, fresh["refresh"]).status_code == 200


def test_password_change_revokes_tokens(api, user, tokens):
    assert me(api, tokens["access"]).status_code == 200

    user.set_password(NEW_PASSWORD)
    user.save()

    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    assert_error(refresh(api, tokens["refresh"]), 401, "token_revoked")
    assert me(api, obtain(api, "alice", password=NEW_PASSWORD)["access"]).status_code == 200


def test_stale_user_save_does_not_undo_revocation(api, user, tokens):
    stale = User.objects.get(pk=user.pk)
    me(api, tokens["access"])
    user_tokens_revoke(user=user, actor=None, reason="compromised")

    stale.first_name = "Alice"
    stale.save()

    assert User.objects.get(pk=user.pk).token_generation == 1
    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    assert_error(refresh(api, tokens["refresh"]), 401, "token_revoked")


def test_stale_password_change_still_revokes_newer_tokens(api, user):
    stale = User.objects.get(pk=user.pk)
    user_tokens_revoke(user=user, actor=None, reason="first revocation")
    later = obtain(api, "alice")
    assert me(api, later["access"]).status_code == 200

    stale.set_password(NEW_PASSWORD)
    stale.save()

    assert User.objects.get(pk=user.pk).token_generation == 2
    assert_error(me(api, later["access"]), 401, "token_revoked")


def test_deactivation_refuses_next_request(api, user, tokens):
    assert me(api, tokens["access"]).status_code == 200

    user.is_active = False
    user.save()

    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    assert_error(refresh(api, tokens["refresh"]), 401, "token_revoked")


def test_user_deactivate_service_refuses_next_request(api, user, tokens):
    assert me(api, tokens["access"]).status_code == 200

    user_deactivate(users=[user], actor=None, reason="left the company")

    assert_error(me(api, tokens["access"]), 401, "token_revoked")


# ---------------------------------------------------------------------------
# Scope changes: effective scopes = token scopes AND current grants
# ---------------------------------------------------------------------------


def test_removed_scope_is_refused_on_next_request(api, user, scopes, tokens):
    assert probe(tokens["access"]).status_code == 200

    user.scopes.remove(scopes["documents:write"])

    response = probe(tokens["access"])
    assert response.status_code == 403
    assert response.data["error"]["code"] == "insufficient_scope"
    assert me(api, tokens["access"]).json()["scopes"] == ["documents:read", "query:read"]


def test_grant_removed_from_the_scope_side_shrinks_effective_scopes(api, user, scopes, tokens):
    assert "documents:write" in me(api, tokens["access"]).json()["scopes"]

    scopes["documents:write"].users.remove(user)

    assert me(api, tokens["access"]).json()["scopes"] == ["documents:read", "query:read"]


def test_scope_cleared_of_holders_shrinks_effective_scopes(api, user, scopes, tokens):
    assert "query:read" in me(api, tokens["access"]).json()["scopes"]

    scopes["query:read"].users.clear()

    assert me(api, tokens["access"]).json()["scopes"] == ["documents:read", "documents:write"]


def test_deleted_scope_shrinks_holders_effective_scopes(api, user, scopes, tokens):
    assert probe(tokens["access"]).status_code == 200

    scopes["documents:write"].delete()

    assert me(api, tokens["access"]).json()["scopes"] == ["documents:read", "query:read"]
    assert probe(tokens["access"]).status_code == 403


def test_renamed_scope_shrinks_holders_effective_scopes(api, user, scopes, tokens):
    assert probe(tokens["access"]).status_code == 200

    scope = scopes["documents:write"]
    scope.name = "documents:edit"
    scope.save()

    assert me(api, tokens["access"]).json()["scopes"] == ["documents:read", "query:read"]


def test_regranted_scopes_never_widen_beyond_the_token(api, user, scopes):
    narrow = obtain(api, "alice", scopes=["query:read", "documents:read"])
    scopes["documents:read"].delete()
    assert me(api, narrow["access"]).json()["scopes"] == ["query:read"]

    recreated = Scope.objects.create(name="documents:read")
    user.scopes.add(recreated, scopes["admin"])

    body = me(api, narrow["access"]).json()
    assert body["scopes"] == ["documents:read", "query:read"]
    assert probe(narrow["access"]).status_code == 403


# ---------------------------------------------------------------------------
# The hot path and the cache
# ---------------------------------------------------------------------------


@pytest.fixture
def resync_not_due(monkeypatch):
    """The periodic (every few seconds, not per request) resync of dirty users is not due during the test."""
    monkeypatch.setattr(revocation, "_next_dirty_check", float("inf"))


@pytest.mark.usefixtures("resync_not_due")
def test_warm_authentication_reads_no_database(user, tokens, django_assert_num_queries):
    principal, _ = authenticate(tokens["access"])
    assert principal.username == "alice"

    with django_assert_num_queries(0):
        principal, _ = authenticate(tokens["access"])

    assert principal.pk == user.pk
    assert principal.scopes == {"documents:read", "documents:write", "query:read"}


@pytest.mark.usefixtures("resync_not_due")
def test_warm_cache_refuses_revoked_jti_without_database(user, tokens, django_assert_num_queries):
    authenticate(tokens["access"])
    access_token_revoke(token=AccessToken(tokens["access"]), actor=None, reason="leaked")

    with django_assert_num_queries(0), pytest.raises(TokenRevoked):
        authenticate(tokens["access"])


def test_flushed_redis_still_refuses_revoked_jti_and_rewarms(api, user, tokens):
    assert me(api, tokens["access"]).status_code == 200
    jti = AccessToken(tokens["access"])["jti"]
    access_token_revoke(token=AccessToken(tokens["access"]), actor=None, reason="leaked")

    redis().flushdb()

    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    assert redis().exists(revocation.warm_key(user.pk)) == 1
    assert redis().exists(revocation.jti_key(user.pk, jti)) == 1
    assert redis().exists(revocation.state_key(user.pk)) == 1


def test_flushed_redis_still_refuses_revoked_family_and_rewarms(api, user, tokens):
    assert me(api, tokens["access"]).status_code == 200
    family_id = AccessToken(tokens["access"])["fam"]
    token_family_revoke(family=TokenFamily.objects.get(id=family_id), actor=None, reason="stolen")

    redis().flushdb()

    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    assert redis().exists(revocation.warm_key(user.pk)) == 1
    assert redis().exists(revocation.family_key(user.pk, family_id)) == 1


def test_flushed_redis_still_refuses_after_user_tokens_revoke(api, user, tokens):
    assert me(api, tokens["access"]).status_code == 200
    user_tokens_revoke(user=user, actor=None, reason="compromised")

    redis().flushdb()

    assert_error(me(api, tokens["access"]), 401, "token_revoked")


def test_access_token_revoke_spares_other_tokens_of_the_user(api, user):
    leaked = obtain(api, "alice")
    other = obtain(api, "alice")
    assert me(api, other["access"]).status_code == 200

    access_token_revoke(token=AccessToken(leaked["access"]), actor=None, reason="leaked")

    assert_error(me(api, leaked["access"]), 401, "token_revoked")
    assert me(api, other["access"]).status_code == 200
    assert refresh(api, other["refresh"]).status_code == 200


# ---------------------------------------------------------------------------
# Redis configured but down: the database decides
# ---------------------------------------------------------------------------


def test_redis_down_valid_token_still_works(api, user, tokens, redis_switch):
    redis_switch.down()

    response = me(api, tokens["access"])

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_redis_down_revoked_jti_is_refused(api, user, tokens, redis_switch):
    access_token_revoke(token=AccessToken(tokens["access"]), actor=None, reason="leaked")
    redis_switch.down()

    assert_error(me(api, tokens["access"]), 401, "token_revoked")


def test_redis_down_revocation_made_while_down_is_refused(api, user, tokens, redis_switch):
    me(api, tokens["access"])
    redis_switch.down()

    user_tokens_revoke(user=user, actor=None, reason="compromised")

    assert_error(me(api, tokens["access"]), 401, "token_revoked")


def test_redis_down_readyz_is_degraded(api, redis_switch, transactional_db):
    redis_switch.down()

    response = api.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"


def test_revocation_while_redis_down_marks_user_dirty_and_applies_once_back(api, user, tokens, redis_switch, monkeypatch):
    assert me(api, tokens["access"]).status_code == 200  # cached state says generation 0
    redis_switch.down()

    user_tokens_revoke(user=user, actor=None, reason="compromised")

    assert CacheSyncState.objects.filter(name=f"user:{user.pk}").exists()
    redis_switch.up()
    monkeypatch.setattr(revocation, "_next_dirty_check", 0.0)
    assert redis().exists(revocation.state_key(user.pk)) == 1  # the stale entry is still there
    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    assert not CacheSyncState.objects.filter(name=f"user:{user.pk}").exists()


def test_jti_revoked_while_redis_down_is_refused_once_back(api, user, tokens, redis_switch, monkeypatch):
    assert me(api, tokens["access"]).status_code == 200  # warm: the cache claims no revocations
    redis_switch.down()

    access_token_revoke(token=AccessToken(tokens["access"]), actor=None, reason="leaked")

    redis_switch.up()
    monkeypatch.setattr(revocation, "_next_dirty_check", 0.0)
    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    assert_error(me(api, tokens["access"]), 401, "token_revoked")


def test_deactivation_while_redis_down_is_refused_once_back(api, user, tokens, redis_switch, monkeypatch):
    assert me(api, tokens["access"]).status_code == 200
    redis_switch.down()

    user.is_active = False
    user.save()

    redis_switch.up()
    monkeypatch.setattr(revocation, "_next_dirty_check", 0.0)
    assert_error(me(api, tokens["access"]), 401, "token_revoked")


def test_scope_removed_while_redis_down_shrinks_once_back(api, user, scopes, tokens, redis_switch, monkeypatch):
    assert "documents:write" in me(api, tokens["access"]).json()["scopes"]
    redis_switch.down()

    user.scopes.remove(scopes["documents:write"])

    redis_switch.up()
    monkeypatch.setattr(revocation, "_next_dirty_check", 0.0)
    assert me(api, tokens["access"]).json()["scopes"] == ["documents:read", "query:read"]


def test_state_loaded_before_a_revocation_is_not_cached_after_it(api, user, tokens, monkeypatch):
    # A request reads the user from the database, then (before it writes the cache) an
    # operator revokes everything: the stale copy must not outlive the revocation.
    load = revocation.user_state_from_db

    def load_then_revoke(user_id: int):
        state = load(user_id)
        monkeypatch.setattr(revocation, "user_state_from_db", load)
        user_tokens_revoke(user=user, actor=None, reason="compromised")
        return state

    monkeypatch.setattr(revocation, "user_state_from_db", load_then_revoke)
    me(api, tokens["access"])

    assert_error(me(api, tokens["access"]), 401, "token_revoked")


def test_state_loaded_before_a_deactivation_is_not_cached_after_it(api, user, tokens, monkeypatch):
    load = revocation.user_state_from_db

    def load_then_deactivate(user_id: int):
        state = load(user_id)
        monkeypatch.setattr(revocation, "user_state_from_db", load)
        user.is_active = False
        user.save()
        return state

    monkeypatch.setattr(revocation, "user_state_from_db", load_then_deactivate)
    me(api, tokens["access"])

    assert_error(me(api, tokens["access"]), 401, "token_revoked")


# ---------------------------------------------------------------------------
# Revocation that does not depend on one Redis write
# ---------------------------------------------------------------------------


@pytest.fixture
def other_redis(settings):
    """Point this process at another Redis database (a command run with another REDIS_URL) and back again."""
    live = (settings.CACHES, settings.REDIS_URL)
    other_url = live[1].rsplit("/", 1)[0] + ("/14" if not live[1].endswith("/14") else "/13")

    class Switch:
        def elsewhere(self) -> None:
            settings.CACHES = cache_settings(other_url)
            settings.REDIS_URL = other_url
            redis_gate.reset()

        def back(self) -> None:
            settings.CACHES, settings.REDIS_URL = live
            redis_gate.reset()

    yield Switch()
    settings.CACHES, settings.REDIS_URL = live
    redis_gate.reset()


@pytest.mark.parametrize("revoke", ["everything", "logout", "deactivate"])
def test_a_revocation_written_to_another_redis_still_stops_the_token_within_the_resync(
    api, user, tokens, other_redis, monkeypatch, revoke
):
    """The serving Redis never heard of it: every process still drops the user's cached entries at its next resync
    (every DIRTY_CHECK_INTERVAL seconds), because the revocation marked the user in the database itself."""
    assert me(api, tokens["access"]).status_code == 200  # warm in the serving Redis
    other_redis.elsewhere()
    if revoke == "everything":
        user_tokens_revoke(user=user, actor=None, reason="compromised")
    elif revoke == "logout":
        response = api.post(
            "/api/v1/auth/token/revoke/", {"refresh": tokens["refresh"]}, format="json", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"
        )
        assert response.status_code == 204
    else:
        user_deactivate(users=[user], actor=None, reason="left")
    other_redis.back()

    monkeypatch.setattr(revocation, "_next_dirty_check", 0.0)  # the resync interval has passed
    response = me(api, tokens["access"])
    assert_error(response, 401, "token_revoked")


def test_the_resync_interval_is_seconds():
    assert revocation.DIRTY_CHECK_INTERVAL <= 5


def test_logout_succeeds_while_redis_is_down_and_the_token_stops_at_once(api, user, tokens, redis_switch):
    redis_switch.down()
    response = api.post(
        "/api/v1/auth/token/revoke/", {"refresh": tokens["refresh"]}, format="json", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"
    )
    assert response.status_code == 204, response.content
    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    refreshed = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code in (401, 503)
    redis_switch.up()
    assert_error(me(api, tokens["access"]), 401, "token_revoked")


def test_revoke_tokens_command_succeeds_while_redis_is_down(api, user, tokens, redis_switch):
    from django.core.management import call_command

    redis_switch.down()
    call_command("revoke_tokens", "--user", "alice", "--reason", "outage drill", stdout=io.StringIO())
    assert_error(me(api, tokens["access"]), 401, "token_revoked")
