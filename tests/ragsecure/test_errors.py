"""Bad input never yields a 500: every error has the one shape, its request id in X-Request-ID, and no traceback."""

import json

import pytest
from rest_framework.test import APIClient

from tests.conftest import ALL_API_SCOPES, PASSWORD, assert_error, bearer, obtain

TOKEN = "/api/v1/auth/token/"
MAX_REQUEST_BYTES = 4 * 1024 * 1024
scoped_urls = pytest.mark.urls("tests.accounts.scoped_urls")


def post_raw(api, body: bytes | str, content_type: str = "application/json", **extra):
    return api.generic("POST", TOKEN, body, content_type=content_type, **extra)


def credentials(**overrides) -> dict:
    return {"username": "alice", "password": PASSWORD, **overrides}


def assert_no_internals(response) -> None:
    text = response.content.decode("utf-8", "replace")
    for leak in ("Traceback", "RuntimeError", "boom-detail", "/etc/shadow", 'File "', "site-packages"):
        assert leak not in text, text[:500]


# --- bodies that are not a JSON object


@pytest.mark.parametrize("body", [b"{not json", b"{'username': 'alice'}", b'{"username": "alice",}', b"\x00\x01", b"{" * 10_000])
def test_non_json_body_is_malformed(api, body):
    assert_error(post_raw(api, body), 400, "malformed_request")


@pytest.mark.parametrize("body", [b'{"username": "al\xffice", "password": "x"}', b"\xfe\xff\x00{", b'{"username": "\xc3\x28"}'])
def test_invalid_utf8_body_is_malformed(api, body):
    assert_error(post_raw(api, body), 400, "malformed_request")


@pytest.mark.parametrize("body", ["[]", '["alice", "pw"]', '"alice"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_refused(api, body):
    response = post_raw(api, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] in ("validation_error", "malformed_request")
    assert error["request_id"] == response["X-Request-ID"]


def test_empty_json_body_lists_required_fields(api):
    error = assert_error(post_raw(api, b"{}"), 400, "validation_error")
    assert set(error["fields"]) == {"username", "password"}


def test_deeply_nested_json_is_not_a_500(api):
    body = '{"username": ' + "[" * 100_000 + "]" * 100_000 + ', "password": "x"}'
    response = post_raw(api, body)
    assert response.status_code == 400, response.status_code
    assert response.json()["error"]["request_id"] == response["X-Request-ID"]


# --- content types


def test_text_plain_is_malformed(api):
    assert_error(post_raw(api, json.dumps(credentials()), content_type="text/plain"), 400, "malformed_request")


def test_multipart_is_malformed(api):
    assert_error(api.post(TOKEN, credentials(), format="multipart"), 400, "malformed_request")


def test_form_urlencoded_is_malformed(api):
    body = f"username=alice&password={PASSWORD}"
    assert_error(post_raw(api, body, content_type="application/x-www-form-urlencoded"), 400, "malformed_request")


@pytest.mark.parametrize("content_type", ["application/xml", "application/json-patch+json", "garbage", "application/jsonx", "text/json"])
def test_other_content_types_are_not_a_500(api, content_type):
    response = post_raw(api, json.dumps(credentials(password="x" * 5)), content_type=content_type)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("malformed_request", "validation_error")


# --- body size and Content-Length


def test_declared_body_over_limit_is_413(api):
    assert_error(post_raw(api, b"{}", CONTENT_LENGTH=str(MAX_REQUEST_BYTES + 1)), 413, "payload_too_large")


def test_actual_body_over_limit_is_413(api):
    body = json.dumps({"username": "alice", "password": "x" * MAX_REQUEST_BYTES}).encode()
    assert len(body) > MAX_REQUEST_BYTES
    assert_error(post_raw(api, body), 413, "payload_too_large")


def test_body_exactly_at_limit_is_read(api):
    padding = MAX_REQUEST_BYTES - len(json.dumps({"username": "", "password": "x"}))
    body = json.dumps({"username": "u" * padding, "password": "x"}).encode()
    assert len(body) == MAX_REQUEST_BYTES
    error = assert_error(post_raw(api, body), 400, "validation_error")
    assert "username" in error["fields"]


def test_body_over_django_upload_limit_is_413(api, settings):
    # The Content-Length gate lets it through; Django's own in-memory limit must still hold.
    settings.RAGSECURE = {**settings.RAGSECURE, "MAX_REQUEST_BYTES": 8 * 1024 * 1024}
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    body = json.dumps({"username": "alice", "password": "x" * (64 * 1024)}).encode()
    assert_error(post_raw(api, body), 413, "payload_too_large")


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "1.5", " 12", "0x10", "9" * 30, "²"])
def test_invalid_content_length_is_malformed(length):
    api = APIClient(HTTP_HOST="localhost", raise_request_exception=False)
    assert_error(post_raw(api, b"{}", CONTENT_LENGTH=length), 400, "malformed_request")


# --- routing and methods


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/nope", "/api/v2/auth/token/", "/api/v1/auth/me/extra/"])
def test_unknown_api_url_is_json_404(api, settings, debug, path):
    settings.DEBUG = debug
    response = api.get(path)
    assert_error(response, 404, "not_found")
    assert_no_internals(response)


@pytest.mark.parametrize("debug", [True, False])
def test_post_without_trailing_slash_is_not_a_500(settings, debug):
    settings.DEBUG = debug
    api = APIClient(HTTP_HOST="localhost", raise_request_exception=False)
    response = api.post("/api/v1/auth/token", credentials(), format="json")
    assert response.status_code < 500, response.content[:300]
    assert_no_internals(response)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_wrong_method_is_json_405(api, method):
    response = api.generic(method, TOKEN)
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


@scoped_urls
@pytest.mark.parametrize("debug", [True, False])
def test_unexpected_exception_in_api_view_is_json_500(api, settings, debug):
    settings.DEBUG = debug
    response = api.get("/api/v1/test/explode/")
    assert_error(response, 500, "internal_error")
    assert_no_internals(response)


@scoped_urls
@pytest.mark.parametrize("debug", [True, False])
def test_unexpected_exception_in_plain_django_view_is_json_500(settings, debug):
    settings.DEBUG = debug
    api = APIClient(HTTP_HOST="localhost", raise_request_exception=False)
    response = api.get("/api/v1/test/explode-django/")
    assert_error(response, 500, "internal_error")
    assert_no_internals(response)


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("host", ["evil.com", "localhost.evil.com", "local host", "localhost:abc"])
def test_disallowed_host_is_json_400(settings, debug, host):
    settings.DEBUG = debug
    response = APIClient(HTTP_HOST=host).post(TOKEN, credentials(), format="json")
    error = assert_error(response, 400, "bad_request")
    assert error["message"] == "The Host header names a host this service does not serve."
    assert_no_internals(response)


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/auth/me/", "/api/v1/documents/", "/admin/login/", "/no/such/page"])
def test_disallowed_host_says_so_on_every_path(path):
    response = APIClient(HTTP_HOST="evil.example").get(path)
    error = assert_error(response, 400, "bad_request")
    assert "Host header" in error["message"]


# --- username, password and scopes


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "alice"}, "password"),
        ({"username": None, "password": PASSWORD}, "username"),
        ({"username": "alice", "password": None}, "password"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "alice", "password": ""}, "password"),
        ({"username": "a" * 151, "password": PASSWORD}, "username"),
        ({"username": "alice", "password": "p" * 1025}, "password"),
        ({"username": "ali\x00ce", "password": PASSWORD}, "username"),
        ({"username": "alice", "password": "pass\x00word-long-enough"}, "password"),
        ({"username": ["alice"], "password": PASSWORD}, "username"),
        ({"username": {"$ne": ""}, "password": PASSWORD}, "username"),
        ({"username": "alice", "password": {"$ne": ""}}, "password"),
        ({"username": "alice", "password": PASSWORD, "scopes": "query:read"}, "scopes"),
        ({"username": "alice", "password": PASSWORD, "scopes": {"query:read": True}}, "scopes"),
        ({"username": "alice", "password": PASSWORD, "scopes": ["query:read"] * 33}, "scopes"),
        ({"username": "alice", "password": PASSWORD, "scopes": ["q" * 65]}, "scopes"),
    ],
    ids=[
        "no-username",
        "no-password",
        "null-username",
        "null-password",
        "empty-username",
        "empty-password",
        "username-151",
        "password-1025",
        "nul-in-username",
        "nul-in-password",
        "username-list",
        "username-object",
        "password-object",
        "scopes-string",
        "scopes-object",
        "scopes-33",
        "scope-65-chars",
    ],
)
def test_bad_login_fields_are_validation_errors(api, body, field):
    error = assert_error(api.post(TOKEN, body, format="json"), 400, "validation_error")
    assert field in error["fields"], error


@pytest.mark.redis
def test_password_of_max_length_is_checked_not_refused_as_too_long(api, user):
    response = api.post(TOKEN, credentials(password="p" * 1024), format="json")
    assert_error(response, 401, "authentication_failed")


@pytest.mark.redis
@pytest.mark.parametrize("requested", [["nope"], ["admin"], ["query:read", "documents:delete"], ["QUERY:READ"]])
def test_scopes_not_granted_are_validation_errors(api, user, requested):
    error = assert_error(api.post(TOKEN, credentials(scopes=requested), format="json"), 400, "validation_error")
    assert "scopes" in error["fields"]


@pytest.mark.redis
def test_unknown_and_server_set_fields_are_ignored(api, user):
    body = obtain(api, user.username, is_superuser=True, token_generation=99, sub="1", scopes_granted=["admin"])
    assert body["scopes"] == sorted(ALL_API_SCOPES)
    assert api.get("/api/v1/auth/me/", **bearer(body["access"])).status_code == 200


@pytest.mark.redis
def test_unknown_user_and_wrong_password_answer_identically(api, user):
    unknown = api.post(TOKEN, credentials(username="nobody-here"), format="json")
    wrong = api.post(TOKEN, credentials(password="wrong-password-but-long"), format="json")
    assert_error(unknown, 401, "authentication_failed")
    assert_error(wrong, 401, "authentication_failed")
    unknown_error, wrong_error = unknown.json()["error"], wrong.json()["error"]
    assert unknown_error.pop("request_id") != wrong_error.pop("request_id")
    assert unknown_error == wrong_error
    assert unknown["WWW-Authenticate"] == wrong["WWW-Authenticate"]


@pytest.mark.redis
def test_inactive_user_answers_like_wrong_password(api, make_user):
    make_user("dormant", is_active=False)
    inactive = api.post(TOKEN, credentials(username="dormant"), format="json")
    wrong = api.post(TOKEN, credentials(username="dormant", password="wrong-password-but-long"), format="json")
    assert_error(inactive, 401, "authentication_failed")
    inactive_error, wrong_error = inactive.json()["error"], wrong.json()["error"]
    del inactive_error["request_id"], wrong_error["request_id"]
    assert inactive_error == wrong_error


# --- request ids and caching headers


def test_safe_client_request_id_is_echoed_beside_server_id(api):
    response = api.get("/healthz", HTTP_X_REQUEST_ID="client-42.retry_1")
    assert response["X-Client-Request-ID"] == "client-42.retry_1"
    assert response["X-Request-ID"] != "client-42.retry_1"


def test_client_request_id_never_replaces_error_request_id(api):
    response = api.get("/api/v1/nope/", HTTP_X_REQUEST_ID="client-42")
    error = assert_error(response, 404, "not_found")
    assert error["request_id"] != "client-42"
    assert response["X-Client-Request-ID"] == "client-42"


@pytest.mark.parametrize(
    "client_id",
    ["x" * 10 * 1024, "x" * 65, "../", "..", ".", "../../etc/passwd", "a b", "id\r\nSet-Cookie: a=b", "<script>", "ïd", ""],
    ids=["10kb", "65-chars", "dotdot-slash", "dotdot", "dot", "traversal", "space", "crlf", "html", "non-ascii", "empty"],
)
def test_unsafe_client_request_id_is_not_echoed(api, client_id):
    response = api.get("/healthz", HTTP_X_REQUEST_ID=client_id)
    assert response.status_code == 200
    assert "X-Client-Request-ID" not in response
    assert response["X-Request-ID"] != client_id


def test_request_ids_are_unique(api):
    ids = {api.get("/healthz")["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/api/v1/auth/me/"),
        ("GET", "/api/v1/nope/"),
        ("GET", "/admin/login/"),
        ("GET", "/nope"),
        ("POST", TOKEN),
        ("DELETE", TOKEN),
    ],
)
def test_every_response_has_a_request_id(api, method, path):
    response = api.generic(method, path)
    assert len(response["X-Request-ID"]) >= 16


@pytest.mark.redis
def test_token_and_data_responses_are_not_cached(api, user):
    pair = api.post(TOKEN, credentials(), format="json")
    assert pair.status_code == 200
    assert pair["Cache-Control"] == "no-store"
    me = api.get("/api/v1/auth/me/", **bearer(pair.json()["access"]))
    assert me.status_code == 200
    assert me["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/auth/me/", 401),
        ("GET", "/api/v1/nope/", 404),
        ("GET", TOKEN, 405),
        ("POST", TOKEN, 400),
        ("POST", TOKEN, 413),
    ],
)
def test_error_responses_are_not_cached(api, method, path, status):
    extra = {"CONTENT_LENGTH": str(MAX_REQUEST_BYTES + 1)} if status == 413 else {}
    response = api.generic(method, path, b"{}", content_type="application/json", **extra)
    assert response.status_code == status
    assert response.get("Cache-Control") == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/v1/auth/me/", 401), ("GET", "/api/v1/nope/", 404), ("POST", TOKEN, 413)],
)
def test_error_responses_keep_security_headers(api, method, path, status):
    extra = {"CONTENT_LENGTH": str(MAX_REQUEST_BYTES + 1)} if status == 413 else {}
    response = api.generic(method, path, b"{}", content_type="application/json", **extra)
    assert response.status_code == status
    assert response.get("X-Content-Type-Options") == "nosniff"
