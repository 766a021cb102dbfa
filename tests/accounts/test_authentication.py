"""Authorization header handling and scope checks: only a well-formed Bearer access token with the view's scopes gets in."""

import base64

import pytest

from tests.conftest import PASSWORD, assert_error, bearer, obtain

ME = "/api/v1/auth/me/"
SCOPED = "/api/v1/test/scoped/"
REALM_CHALLENGE = 'Bearer realm="ragsecure"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="ragsecure", error="invalid_token"'

scoped_urls = pytest.mark.urls("tests.accounts.scoped_urls")


def authorization(value: str) -> dict:
    return {"HTTP_AUTHORIZATION": value}


def assert_authentication_failed(response) -> None:
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == REALM_CHALLENGE


def assert_token_invalid(response) -> None:
    assert_error(response, 401, "token_invalid")
    assert response["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


# --- the Authorization header


def test_missing_header_refused(api):
    assert_authentication_failed(api.get(ME))


def test_empty_header_refused(api):
    assert_authentication_failed(api.get(ME, **authorization("")))


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer    ", "bearer\t"])
def test_bearer_without_token_refused(api, value):
    assert_token_invalid(api.get(ME, **authorization(value)))


def test_bearer_with_two_tokens_refused(api):
    assert_token_invalid(api.get(ME, **authorization("Bearer a b")))


def test_bearer_with_two_valid_tokens_refused(api, tokens):
    assert_token_invalid(api.get(ME, **authorization(f"Bearer {tokens['access']} {tokens['access']}")))


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_scheme_is_case_insensitive(api, tokens, scheme):
    response = api.get(ME, **authorization(f"{scheme} {tokens['access']}"))
    assert response.status_code == 200, response.content
    assert response.json()["username"] == "alice"


def test_basic_with_correct_password_refused(api, user):
    credentials = base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()
    assert_authentication_failed(api.get(ME, **authorization(f"Basic {credentials}")))


def test_apikey_scheme_with_unknown_key_refused(api, user):
    """The ApiKey scheme is ours: a key that is not one is refused as an invalid credential (401 token_invalid)."""
    response = api.get(ME, **authorization("ApiKey not-a-real-key-0123456789"))
    assert_error(response, 401, "token_invalid")


@pytest.mark.parametrize("scheme", ["Token", "JWT", "Bearer:", "Bearerx"])
def test_valid_token_under_another_scheme_refused(api, tokens, scheme):
    assert_authentication_failed(api.get(ME, **authorization(f"{scheme} {tokens['access']}")))


@pytest.mark.parametrize("value", ["\x00\x01\x02\x7f", "Bëarer abc", "\u202ebearer abc", "\xff\xfe\xfd"])
def test_garbage_header_refused(api, value):
    assert_authentication_failed(api.get(ME, **authorization(value)))


@pytest.mark.parametrize("token", ["\x00\xff\x80", "tökén.ä.ö", "a.b.c\x00", "\u202ea.b.c", "🔑.🔑.🔑"])
def test_garbage_bearer_token_refused(api, token):
    assert_token_invalid(api.get(ME, **authorization(f"Bearer {token}")))


def test_non_ascii_inside_valid_token_refused(api, tokens):
    header, payload, signature = tokens["access"].split(".")
    assert_token_invalid(api.get(ME, **bearer(f"{header}.{payload}é.{signature}")))


def test_100kb_token_refused_not_crashing(api):
    assert_token_invalid(api.get(ME, **bearer("a" * 100 * 1024)))


def test_100kb_token_of_three_segments_refused(api):
    segment = "A" * (50 * 1024)
    assert_token_invalid(api.get(ME, **bearer(f"{segment}.{segment}.{segment}")))


@pytest.mark.parametrize("whitespace", [" ", "\t", "\n", "\r\n", "\x0b", "\u00a0"])
def test_whitespace_inside_valid_token_refused(api, tokens, whitespace):
    access = tokens["access"]
    middle = len(access) // 2
    assert_token_invalid(api.get(ME, **bearer(access[:middle] + whitespace + access[middle:])))


# --- scopes


@scoped_urls
def test_view_scope_granted_allows(api, user):
    access = obtain(api, user.username, scopes=["query:read"])["access"]
    response = api.get(SCOPED, **bearer(access))
    assert response.status_code == 200, response.content


@scoped_urls
def test_scoped_view_without_token_is_401_not_403(api):
    assert_authentication_failed(api.get(SCOPED))


@scoped_urls
def test_down_scoped_token_refused_with_scope_challenge(api, user):
    access = obtain(api, user.username, scopes=[])["access"]
    response = api.get(SCOPED, **bearer(access))
    assert_error(response, 403, "insufficient_scope")
    assert response["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="query:read"'


@scoped_urls
def test_challenge_lists_every_required_scope(api, user):
    access = obtain(api, user.username, scopes=["documents:read"])["access"]
    response = api.get("/api/v1/test/two-scopes/", **bearer(access))
    assert_error(response, 403, "insufficient_scope")
    assert response["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="documents:read documents:write"'


@scoped_urls
def test_down_scoped_token_reports_no_scopes_on_me(api, user):
    access = obtain(api, user.username, scopes=[])["access"]
    response = api.get(ME, **bearer(access))
    assert response.status_code == 200
    assert response.json()["scopes"] == []
    assert response.json()["token"]["scopes"] == []


@pytest.mark.redis
@scoped_urls
def test_scope_removed_after_issue_refused_on_next_request(api, user, scopes):
    access = obtain(api, user.username)["access"]
    assert api.get(SCOPED, **bearer(access)).status_code == 200  # user state now cached

    user.scopes.remove(scopes["query:read"])

    response = api.get(SCOPED, **bearer(access))
    assert_error(response, 403, "insufficient_scope")
    assert "query:read" not in api.get(ME, **bearer(access)).json()["scopes"]


@pytest.mark.redis
@scoped_urls
def test_scope_removed_from_scope_side_refused_on_next_request(api, user, scopes):
    access = obtain(api, user.username)["access"]
    assert api.get(SCOPED, **bearer(access)).status_code == 200

    scopes["query:read"].users.remove(user)

    assert_error(api.get(SCOPED, **bearer(access)), 403, "insufficient_scope")


@pytest.mark.redis
@scoped_urls
def test_scope_granted_after_issue_does_not_widen_token(api, make_user, scopes):
    bob = make_user("bob", scopes_granted=["documents:read"])
    access = obtain(api, bob.username)["access"]
    assert_error(api.get(SCOPED, **bearer(access)), 403, "insufficient_scope")

    bob.scopes.add(scopes["query:read"])

    assert_error(api.get(SCOPED, **bearer(access)), 403, "insufficient_scope")


@scoped_urls
def test_view_without_required_scopes_is_closed(api, make_user):
    root = make_user("root", scopes_granted=["query:read", "documents:read", "documents:write", "admin"])
    access = obtain(api, root.username)["access"]
    response = api.get("/api/v1/test/undeclared/", **bearer(access))
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] in ("insufficient_scope", "permission_denied")
