"""The token endpoints (obtain, refresh, revoke) and `me`, as a client and an attacker see them."""

import copy
import threading

import jwt
import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import RefreshTokenRecord, Tier, TokenFamily
from accounts.services import user_tier_change
from ragsecure.redis_gate import redis_gate
from ragsecure.settings.base import cache_settings
from tests.conftest import PASSWORD, assert_error, bearer, obtain

pytestmark = [pytest.mark.redis, pytest.mark.database]

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
REVOKE_URL = "/api/v1/auth/token/revoke/"
ME_URL = "/api/v1/auth/me/"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def refresh(api: APIClient, refresh_token: str):
    return api.post(REFRESH_URL, {"refresh": refresh_token}, format="json")


def me(api: APIClient, access: str):
    return api.get(ME_URL, **bearer(access))


# ---------------------------------------------------------------------------
# Obtain
# ---------------------------------------------------------------------------


def test_obtain_response_shape_and_no_store(api, user):
    response = api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in", "scopes"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert sorted(body["scopes"]) == ["documents:read", "documents:write", "query:read"]


def test_obtained_tokens_are_eddsa_with_a_published_kid(api, tokens):
    published = {key["kid"] for key in api.get("/.well-known/jwks.json").json()["keys"]}

    for token in (tokens["access"], tokens["refresh"]):
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "EdDSA"
        assert header["kid"] in published


def test_access_token_claims_and_lifetime(user, tokens):
    payload = claims(tokens["access"])

    assert {"sub", "jti", "iat", "exp", "aud", "iss", "token_type", "scopes"} <= set(payload)
    assert payload["sub"] == str(user.pk)
    assert payload["token_type"] == "access"
    assert payload["exp"] - payload["iat"] == 300
    assert sorted(payload["scopes"]) == sorted(tokens["scopes"])
    assert "tier" not in payload


def test_refresh_token_claims_and_lifetime(user, tokens):
    payload = claims(tokens["refresh"])

    assert {"sub", "jti", "iat", "exp", "aud", "iss", "token_type", "scopes"} <= set(payload)
    assert payload["token_type"] == "refresh"
    assert payload["exp"] - payload["iat"] == 86400
    assert "tier" not in payload
    assert payload["jti"] != claims(tokens["access"])["jti"]


def test_obtain_down_scoped_token_carries_only_requested_scope(api, user):
    body = obtain(api, "alice", scopes=["query:read"])

    assert body["scopes"] == ["query:read"]
    assert claims(body["access"])["scopes"] == ["query:read"]
    assert me(api, body["access"]).json()["scopes"] == ["query:read"]


def test_obtain_scope_not_granted_is_validation_error(api, make_user):
    make_user("bob", scopes_granted=["query:read"])

    response = api.post(TOKEN_URL, {"username": "bob", "password": PASSWORD, "scopes": ["documents:write"]}, format="json")

    error = assert_error(response, 400, "validation_error")
    assert "scopes" in error["fields"]
    assert TokenFamily.objects.count() == 0


def test_obtain_unknown_scope_is_validation_error(api, user):
    response = api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD, "scopes": ["query:read", "root:all"]}, format="json")

    error = assert_error(response, 400, "validation_error")
    assert "scopes" in error["fields"]


def test_obtain_admin_scope_not_granted_is_validation_error(api, user):
    response = api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD, "scopes": ["admin"]}, format="json")

    assert_error(response, 400, "validation_error")


def test_obtain_inactive_user_fails(api, make_user):
    make_user("bob", is_active=False)

    response = api.post(TOKEN_URL, {"username": "bob", "password": PASSWORD}, format="json")

    assert_error(response, 401, "authentication_failed")


def test_wrong_password_and_unknown_user_look_the_same(api, user):
    wrong_password = api.post(TOKEN_URL, {"username": "alice", "password": "not-the-password-123"}, format="json")
    unknown_user = api.post(TOKEN_URL, {"username": "mallory", "password": "not-the-password-123"}, format="json")

    first = assert_error(wrong_password, 401, "authentication_failed")
    second = assert_error(unknown_user, 401, "authentication_failed")
    first.pop("request_id")
    second.pop("request_id")
    assert first == second
    # Headers match too, apart from the request id and the client IP's own rate counter.
    varying = {"X-Request-ID", "RateLimit-Remaining", "RateLimit-Reset"}
    assert {k: v for k, v in wrong_password.items() if k not in varying} == {
        k: v for k, v in unknown_user.items() if k not in varying
    }


# ---------------------------------------------------------------------------
# Refresh
# ---------------------------------------------------------------------------


def test_refresh_returns_new_pair_with_same_scopes(api, user):
    first = obtain(api, "alice", scopes=["query:read", "documents:read"])

    response = refresh(api, first["refresh"])

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in", "scopes"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert sorted(body["scopes"]) == ["documents:read", "query:read"]
    assert body["refresh"] != first["refresh"] and body["access"] != first["access"]
    assert sorted(claims(body["access"])["scopes"]) == ["documents:read", "query:read"]
    assert me(api, body["access"]).status_code == 200


def test_refresh_never_widens_to_scopes_granted_later(api, make_user, scopes):
    bob = make_user("bob", scopes_granted=["query:read"])
    first = obtain(api, "bob")
    bob.scopes.add(scopes["documents:read"], scopes["admin"])

    body = refresh(api, first["refresh"]).json()

    assert body["scopes"] == ["query:read"]
    assert claims(body["access"])["scopes"] == ["query:read"]


def test_refresh_of_down_scoped_grant_stays_down_scoped(api, user):
    first = obtain(api, "alice", scopes=["query:read"])

    body = refresh(api, first["refresh"]).json()

    assert body["scopes"] == ["query:read"]


def test_refresh_narrows_when_user_lost_a_scope(api, user, scopes):
    first = obtain(api, "alice")
    user.scopes.remove(scopes["documents:write"])

    body = refresh(api, first["refresh"]).json()

    assert sorted(body["scopes"]) == ["documents:read", "query:read"]
    assert sorted(claims(body["access"])["scopes"]) == ["documents:read", "query:read"]


def test_refresh_with_access_token_is_refused(api, tokens):
    response = refresh(api, tokens["access"])

    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("token_invalid", "authentication_failed")


def test_refresh_garbage_is_refused(api, user):
    response = refresh(api, "not.a.token")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def test_consumed_refresh_is_refused(api, tokens):
    assert refresh(api, tokens["refresh"]).status_code == 200

    assert_error(refresh(api, tokens["refresh"]), 401, "token_revoked")


def test_consumed_refresh_reuse_revokes_the_whole_family(api, tokens):
    second = refresh(api, tokens["refresh"]).json()
    assert me(api, second["access"]).status_code == 200

    assert_error(refresh(api, tokens["refresh"]), 401, "token_revoked")

    assert_error(me(api, second["access"]), 401, "token_revoked")
    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    assert_error(refresh(api, second["refresh"]), 401, "token_revoked")


def test_refresh_reuse_leaves_other_logins_alone(api, user):
    stolen = obtain(api, "alice")
    other = obtain(api, "alice")
    refresh(api, stolen["refresh"])

    assert_error(refresh(api, stolen["refresh"]), 401, "token_revoked")

    assert me(api, other["access"]).status_code == 200
    assert refresh(api, other["refresh"]).status_code == 200


@pytest.mark.database
def test_concurrent_refresh_of_one_token_succeeds_once(user, settings):
    # Eight threads on two cores can keep one from reading Redis's reply within the production
    # socket timeout (tens of ms), which answers 503: this test is about the database race only.
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["OPTIONS"].update(SOCKET_TIMEOUT=2.0, SOCKET_CONNECT_TIMEOUT=2.0)
    settings.CACHES = caches
    attempts = 8
    for _ in range(4):
        pair = obtain(APIClient(HTTP_HOST="localhost"), "alice")
        barrier = threading.Barrier(attempts)
        results: list = [None] * attempts

        def attempt(index: int, raw: str = pair["refresh"], barrier: threading.Barrier = barrier, results: list = results) -> None:
            client = APIClient(HTTP_HOST="localhost")
            try:
                barrier.wait(timeout=30)
                response = refresh(client, raw)
                results[index] = (response.status_code, response.json().get("error", {}).get("code"))
            finally:
                connection.close()

        threads = [threading.Thread(target=attempt, args=(index,)) for index in range(attempts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert None not in results, results
        statuses = sorted(results, key=lambda result: result[0])
        assert [status for status, _ in statuses].count(200) == 1, results
        assert statuses[1:] == [(401, "token_revoked")] * (attempts - 1), results
        family = TokenFamily.objects.get(id=claims(pair["refresh"])["fam"])
        # One exchange, one new refresh token: the race minted no second pair.
        assert RefreshTokenRecord.objects.filter(family=family).count() == 2


# ---------------------------------------------------------------------------
# Revoke
# ---------------------------------------------------------------------------


def test_revoke_stops_access_and_refresh_at_once(api, tokens):
    response = api.post(REVOKE_URL, {"refresh": tokens["refresh"]}, format="json", **bearer(tokens["access"]))

    assert response.status_code == 204
    assert_error(me(api, tokens["access"]), 401, "token_revoked")
    assert_error(refresh(api, tokens["refresh"]), 401, "token_revoked")


def test_revoke_stops_access_tokens_minted_from_the_family(api, tokens):
    second = refresh(api, tokens["refresh"]).json()

    response = api.post(REVOKE_URL, {"refresh": second["refresh"]}, format="json", **bearer(second["access"]))

    assert response.status_code == 204
    assert_error(refresh(api, second["refresh"]), 401, "token_revoked")
    assert_error(me(api, second["access"]), 401, "token_revoked")


def test_revoke_someone_elses_refresh_is_refused_and_harmless(api, user, make_user, tokens):
    make_user("bob")
    bobs = obtain(api, "bob")

    response = api.post(REVOKE_URL, {"refresh": bobs["refresh"]}, format="json", **bearer(tokens["access"]))

    error = assert_error(response, 400, "validation_error")
    assert "refresh" in error["fields"]
    assert me(api, bobs["access"]).status_code == 200
    assert refresh(api, bobs["refresh"]).status_code == 200


def test_revoke_garbage_refresh_is_validation_error(api, tokens):
    response = api.post(REVOKE_URL, {"refresh": "garbage"}, format="json", **bearer(tokens["access"]))

    assert_error(response, 400, "validation_error")


def test_revoke_with_access_token_as_refresh_is_validation_error(api, tokens):
    response = api.post(REVOKE_URL, {"refresh": tokens["access"]}, format="json", **bearer(tokens["access"]))

    assert_error(response, 400, "validation_error")
    assert refresh(api, tokens["refresh"]).status_code == 200


def test_revoke_unauthenticated_is_refused(api, tokens):
    response = api.post(REVOKE_URL, {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 401
    assert refresh(api, tokens["refresh"]).status_code == 200


def test_revoke_with_refresh_token_as_bearer_is_refused(api, tokens):
    response = api.post(REVOKE_URL, {"refresh": tokens["refresh"]}, format="json", **bearer(tokens["refresh"]))

    assert response.status_code == 401
    assert refresh(api, tokens["refresh"]).status_code == 200


# ---------------------------------------------------------------------------
# Me
# ---------------------------------------------------------------------------


def test_me_shape(api, tokens):
    response = me(api, tokens["access"])

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"username", "tier", "scopes", "token", "usage"}
    assert body["username"] == "alice"
    assert body["tier"] == {
        "name": "free",
        "requests_per_minute": 10,
        "llm_tokens_per_day": 20000,
        "max_top_k": 5,
        "max_document_bytes": 100000,
        "retrieved_bytes_per_hour": 2000000,
        "max_documents": 100,
        "max_stored_bytes": 10_000_000,
    }
    assert body["scopes"] == ["documents:read", "documents:write", "query:read"]
    access = claims(tokens["access"])
    assert body["token"] == {"jti": access["jti"], "exp": access["exp"], "scopes": access["scopes"]}
    # This request is the first of the minute; nothing of today's budgets is spent yet, and no document is stored.
    assert body["usage"] == {
        "requests_remaining": 9, "tokens_remaining_today": 20_000, "retrieved_bytes_remaining": 2_000_000, "documents_stored": 0,
        "bytes_stored": 0,
    }


def test_me_shows_tier_change_on_next_request(api, user, tiers, tokens):
    assert me(api, tokens["access"]).json()["tier"]["name"] == "free"

    user_tier_change(users=[user], tier=tiers["pro"], actor=None, reason="upgrade")

    tier = me(api, tokens["access"]).json()["tier"]
    assert tier["name"] == "pro"
    assert tier["requests_per_minute"] == 100
    assert tier["max_top_k"] == 20


def test_me_shows_edited_tier_limits_on_next_request(api, tokens):
    me(api, tokens["access"])
    Tier.objects.filter(name="free").update(max_top_k=3)

    assert me(api, tokens["access"]).json()["tier"]["max_top_k"] == 3


def test_me_without_token_is_refused(api, user):
    response = api.get(ME_URL)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_me_with_refresh_token_is_refused(api, tokens):
    response = me(api, tokens["refresh"])

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


# ---------------------------------------------------------------------------
# Redis configured but down: the token endpoints fail closed
# ---------------------------------------------------------------------------


@pytest.fixture
def redis_down(settings):
    settings.CACHES = cache_settings(DEAD_REDIS)
    settings.REDIS_URL = DEAD_REDIS
    redis_gate.reset()
    yield
    redis_gate.reset()


def test_obtain_fails_closed_when_redis_is_down(api, user, redis_down):
    response = api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")

    assert_error(response, 503, "service_unavailable")
    assert TokenFamily.objects.count() == 0


def test_refresh_fails_closed_when_redis_is_down(api, user, tokens, redis_down):
    response = refresh(api, tokens["refresh"])

    assert_error(response, 503, "service_unavailable")
    assert not RefreshTokenRecord.objects.filter(consumed_at__isnull=False).exists()
