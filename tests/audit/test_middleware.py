"""The audit middleware: exactly one entry per HTTP request, whatever its status, stored safely and free of secrets."""

import io
import json
import unicodedata
from collections.abc import Callable

import jwt
import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.test import Client

from accounts.models import User
from audit import chain
from audit.models import AuditEntry
from audit.sanitize import TRUNCATION_MARK
from audit.stream import stream_path
from ragsecure.redis_gate import redis_gate
from tests.audit.audit_urls import EXPLOSION
from tests.conftest import PASSWORD, assert_error, bearer

pytestmark = [pytest.mark.redis, pytest.mark.database]
audit_urls = pytest.mark.urls("tests.audit.audit_urls")

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
REVOKE_URL = "/api/v1/auth/token/revoke/"
ME_URL = "/api/v1/auth/me/"
USERS_ADMIN = "/admin/accounts/user/"
BIDI_AND_SEPARATORS = set("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@pytest.fixture(autouse=True)
def fresh_chain(monkeypatch, settings, tmp_path):
    """A chain and a stream of this test's own, so verify_audit_chain sees only what this test wrote."""
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": str(tmp_path)}
    monkeypatch.setattr(chain, "_writer", None)


@pytest.fixture
def superuser(transactional_db) -> User:
    return User.objects.create_superuser(username="root", password=PASSWORD)


@pytest.fixture
def root(superuser) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(superuser)
    return client


def audited(send: Callable[[], object]) -> tuple[object, AuditEntry]:
    """Send one request; assert it wrote exactly one entry, the one carrying the response's X-Request-ID."""
    before = set(AuditEntry.objects.values_list("id", flat=True))
    response = send()
    new = list(AuditEntry.objects.exclude(id__in=before))
    assert len(new) == 1, [(entry.action, entry.path, entry.status) for entry in new]
    entry = new[0]
    assert entry.request_id == response["X-Request-ID"]
    return response, entry


def stored_text(entry: AuditEntry) -> str:
    """Everything stored about the entry: every column, plus the JSON-lines stream it was shipped to."""
    row = {field.attname: getattr(entry, field.attname) for field in entry._meta.concrete_fields}
    path = stream_path()
    shipped = path.read_text(encoding="utf-8") if path.exists() else ""
    return json.dumps(row, default=str, ensure_ascii=False) + "\n" + shipped


def raw_controls(text: str) -> list[str]:
    return [char for char in text if unicodedata.category(char) == "Cc" or char in BIDI_AND_SEPARATORS]


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def secret_parts(token: str) -> list[str]:
    """The whole token and its signature (the header alone is the same for every token)."""
    return [token, token.rsplit(".", 1)[-1]]


# ---------------------------------------------------------------------------
# One entry per request, every status class
# ---------------------------------------------------------------------------


def test_healthz_entry_records_the_request(api):
    response, entry = audited(lambda: api.get("/healthz", HTTP_USER_AGENT="probe/1.0"))

    assert response.status_code == 200
    assert (entry.method, entry.path, entry.status) == ("GET", "/healthz", 200)
    assert (entry.action, entry.outcome, entry.auth_kind) == ("service.healthz", "allowed", "anonymous")
    assert entry.actor_id is None
    assert entry.duration_ms > 0
    assert entry.client_ip == "127.0.0.1"
    assert entry.user_agent == "probe/1.0"
    assert entry.client_request_id == ""


def test_me_entry_names_the_token_holder(api, user, tokens):
    response, entry = audited(lambda: api.get(ME_URL, **bearer(tokens["access"])))

    assert response.status_code == 200
    assert (entry.action, entry.outcome, entry.status) == ("auth.me", "allowed", 200)
    assert entry.auth_kind == "jwt"
    assert (entry.actor_id, entry.username) == (user.pk, "alice")
    assert entry.token_jti == claims(tokens["access"])["jti"]


def test_successful_login_entry_names_the_user_with_password_auth(api, user):
    response, entry = audited(lambda: api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json"))

    assert response.status_code == 200
    assert (entry.action, entry.outcome, entry.status) == ("auth.token", "allowed", 200)
    assert entry.auth_kind == "password"
    assert (entry.actor_id, entry.username) == (user.pk, "alice")


def test_failed_login_records_the_claimed_username_but_no_identity(api, user):
    response, entry = audited(lambda: api.post(TOKEN_URL, {"username": "alice", "password": "wrong-password-123"}, format="json"))

    assert_error(response, 401, "authentication_failed")
    assert (entry.action, entry.outcome, entry.status) == ("auth.token", "denied", 401)
    assert entry.username == "alice"
    assert entry.auth_kind == "anonymous"
    assert entry.actor_id is None
    assert entry.token_jti == ""
    assert entry.detail["error"] == "authentication_failed"


def test_bad_bearer_token_is_a_denied_anonymous_entry(api, user):
    response, entry = audited(lambda: api.get(ME_URL, **bearer("not.a-valid.token")))

    assert_error(response, 401, "token_invalid")
    assert (entry.outcome, entry.status, entry.auth_kind) == ("denied", 401, "anonymous")
    assert entry.actor_id is None
    assert entry.detail["error"] == "token_invalid"


def test_token_revoke_entry_is_named_by_the_endpoint(api, user, tokens):
    response, entry = audited(lambda: api.post(REVOKE_URL, {"refresh": tokens["refresh"]}, format="json", **bearer(tokens["access"])))

    assert response.status_code == 204
    assert (entry.status, entry.outcome) == (204, "allowed")
    assert (entry.auth_kind, entry.actor_id) == ("jwt", user.pk)
    assert entry.action == "auth.token_revoke"


def test_token_revoke_entry_lists_what_was_revoked(api, user, tokens):
    _, entry = audited(lambda: api.post(REVOKE_URL, {"refresh": tokens["refresh"]}, format="json", **bearer(tokens["access"])))

    events = {event["action"]: event for event in entry.detail["events"]}
    assert set(events) == {"token.family_revoke", "token.access_revoke"}
    assert events["token.access_revoke"]["jti"] == claims(tokens["access"])["jti"]
    assert events["token.family_revoke"]["family"] == claims(tokens["refresh"])["fam"]


@audit_urls
def test_created_response_is_an_allowed_entry(api):
    response, entry = audited(lambda: api.post("/api/v1/test/created/", {}, format="json"))

    assert response.status_code == 201
    assert (entry.action, entry.outcome, entry.status, entry.method) == ("test.create", "allowed", 201, "POST")


def test_malformed_json_is_a_denied_entry_with_its_code(api, user):
    response, entry = audited(lambda: api.post(TOKEN_URL, data='{"username": "alice", ', content_type="application/json"))

    assert_error(response, 400, "malformed_request")
    assert (entry.action, entry.outcome, entry.status) == ("auth.token", "denied", 400)
    assert entry.detail["error"] == "malformed_request"


@audit_urls
def test_insufficient_scope_entry_records_the_required_scopes(api, user, tokens):
    response, entry = audited(lambda: api.get("/api/v1/test/admin-scoped/", **bearer(tokens["access"])))

    assert_error(response, 403, "insufficient_scope")
    assert (entry.action, entry.outcome, entry.status) == ("test.admin_scoped", "denied", 403)
    assert (entry.auth_kind, entry.actor_id) == ("jwt", user.pk)
    assert entry.scopes == ["admin"]
    assert entry.detail["error"] == "insufficient_scope"


@audit_urls
def test_allowed_scoped_request_records_the_scopes_it_exercised(api, user, tokens):
    response, entry = audited(lambda: api.get("/api/v1/test/query-scoped/", **bearer(tokens["access"])))

    assert response.status_code == 200
    assert (entry.outcome, entry.scopes) == ("allowed", ["query:read"])


def test_unknown_api_path_is_a_404_entry(api):
    response, entry = audited(lambda: api.get("/api/v1/no-such-thing/"))

    assert_error(response, 404, "not_found")
    assert (entry.path, entry.status, entry.outcome) == ("/api/v1/no-such-thing/", 404, "denied")
    assert entry.detail["error"] == "not_found"


def test_unknown_admin_page_is_a_404_entry_of_the_staff_user(root, superuser):
    response, entry = audited(lambda: root.get("/admin/no-such-page/"))

    assert response.status_code == 404
    assert (entry.path, entry.status, entry.outcome) == ("/admin/no-such-page/", 404, "denied")
    assert (entry.auth_kind, entry.actor_id, entry.username) == ("session", superuser.pk, "root")


def test_wrong_method_is_a_405_entry(api):
    response, entry = audited(lambda: api.get(TOKEN_URL))

    assert_error(response, 405, "method_not_allowed")
    assert (entry.method, entry.status, entry.outcome) == ("GET", 405, "denied")
    assert entry.detail["error"] == "method_not_allowed"


def test_body_over_the_limit_is_a_413_entry(api, settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "MAX_REQUEST_BYTES": 64}

    response, entry = audited(lambda: api.post(TOKEN_URL, data=json.dumps({"username": "x" * 500}), content_type="application/json"))

    assert_error(response, 413, "payload_too_large")
    assert (entry.status, entry.outcome) == (413, "denied")
    assert entry.detail["error"] == "payload_too_large"


@audit_urls
@pytest.mark.parametrize("url", ["/api/v1/test/rate-limited/", "/api/v1/test/throttled/"])
def test_rate_limited_request_is_a_throttled_entry(api, url):
    response, entry = audited(lambda: api.get(url))

    assert_error(response, 429, "rate_limited")
    assert (entry.status, entry.outcome) == (429, "throttled")
    assert entry.detail["error"] == "rate_limited"


@audit_urls
def test_unexpected_view_error_is_an_error_entry_without_its_detail(api):
    response, entry = audited(lambda: api.get("/api/v1/test/explode/"))

    assert_error(response, 500, "internal_error")
    assert (entry.action, entry.status, entry.outcome) == ("test.explode", 500, "error")
    assert entry.detail["error"] == "internal_error"
    assert EXPLOSION not in stored_text(entry)


@audit_urls
def test_unexpected_error_outside_drf_is_an_error_entry():
    client = Client(HTTP_HOST="localhost", raise_request_exception=False)

    response, entry = audited(lambda: client.get("/api/v1/test/explode-django/"))

    assert_error(response, 500, "internal_error")
    assert (entry.status, entry.outcome) == (500, "error")
    assert entry.detail["error"] == "internal_error"


def test_service_unavailable_is_an_error_entry(api, user, monkeypatch):
    monkeypatch.setattr(redis_gate, "available", lambda: False)

    response, entry = audited(lambda: api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json"))

    assert_error(response, 503, "service_unavailable")
    assert (entry.action, entry.status, entry.outcome) == ("auth.token", 503, "error")
    assert entry.detail["error"] == "service_unavailable"


# ---------------------------------------------------------------------------
# Request ids and client addresses
# ---------------------------------------------------------------------------


def test_safe_client_request_id_is_stored_beside_the_server_id(api):
    response, entry = audited(lambda: api.get("/healthz", HTTP_X_REQUEST_ID="trace-42.a_b"))

    assert entry.client_request_id == "trace-42.a_b"
    assert entry.request_id == response["X-Request-ID"] != "trace-42.a_b"


@pytest.mark.parametrize("client_id", ["r" * 10_000, "../../etc/passwd", "..", "id with spaces", "id\nforged"])
def test_unsafe_client_request_id_is_not_stored(api, client_id):
    response, entry = audited(lambda: api.get("/healthz", HTTP_X_REQUEST_ID=client_id))

    assert response.status_code == 200
    assert entry.client_request_id == ""
    assert entry.request_id == response["X-Request-ID"]
    assert len(entry.request_id) <= 64


def test_client_ip_behind_a_trusted_proxy_is_the_rightmost_forwarded_entry(api, settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "TRUSTED_PROXIES": 1}

    _, entry = audited(lambda: api.get("/healthz", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7"))

    assert entry.client_ip == "203.0.113.7"


def test_forwarded_for_is_ignored_without_trusted_proxies(api, settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "TRUSTED_PROXIES": 0}

    _, entry = audited(lambda: api.get("/healthz", REMOTE_ADDR="198.51.100.9", HTTP_X_FORWARDED_FOR="6.6.6.6"))

    assert entry.client_ip == "198.51.100.9"


# ---------------------------------------------------------------------------
# Admin actions are requests
# ---------------------------------------------------------------------------


def test_admin_revoke_action_is_one_entry_with_target_and_reason(root, superuser, make_user):
    target = make_user("bob")
    form = {"action": "revoke_all_tokens", "_selected_action": [target.pk], "apply": "1", "reason": "suspected credential leak"}

    response, entry = audited(lambda: root.post(USERS_ADMIN, form))

    assert response.status_code == 302
    assert entry.action == "admin.revoke_tokens"
    assert (entry.auth_kind, entry.actor_id, entry.username, entry.outcome) == ("session", superuser.pk, "root", "allowed")
    assert entry.detail["events"] == [
        {"action": "admin.revoke_tokens", "actor": "root", "reason": "suspected credential leak", "user": target.pk}
    ]


# ---------------------------------------------------------------------------
# Hostile input is stored safely
# ---------------------------------------------------------------------------

HOSTILE_AGENTS = [
    "curl/8\nGET /admin/ 200 forged log line",
    "\x1b[31mred\x1b[0m\x1b]0;title\x07",
    "<script>alert(document.cookie)</script>",
    "nul\x00byte\rcarriage\u2028separator\u202eevil\x85next",
]


@pytest.mark.parametrize("agent", HOSTILE_AGENTS)
def test_hostile_user_agent_is_stored_escaped(api, agent):
    response, entry = audited(lambda: api.get("/healthz", HTTP_USER_AGENT=agent))

    assert response.status_code == 200
    assert raw_controls(entry.user_agent) == []
    assert entry.user_agent  # kept, in escaped form, for review


def test_escaped_user_agent_keeps_the_attacker_text_visible(api):
    _, entry = audited(lambda: api.get("/healthz", HTTP_USER_AGENT="curl/8\n<script>x</script>"))

    assert entry.user_agent == "curl/8\\x0a<script>x</script>"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("Mozilla/5.0 (Motörhead; 日本語)".encode().decode("latin-1"), "Mozilla/5.0 (Motörhead; 日本語)"),
        (b"agent \xff\xfe broken".decode("latin-1"), "agent \ufffd\ufffd broken"),
    ],
)
def test_a_utf8_user_agent_is_stored_as_text(api, sent, stored):
    """WSGI hands headers over as Latin-1: UTF-8 bytes are decoded again (invalid ones replaced), never kept as mojibake."""
    _, entry = audited(lambda: api.get("/healthz", HTTP_USER_AGENT=sent))

    assert entry.user_agent == stored


def test_huge_user_agent_is_truncated(api):
    _, entry = audited(lambda: api.get("/healthz", HTTP_USER_AGENT="A" * 10_240))

    assert len(entry.user_agent) <= 512
    assert entry.user_agent.endswith(TRUNCATION_MARK)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/a%0Aforged%0D%0Aline/", "/api/v1/%1B[2J%1B[31m/", "/api/v1/<script>alert(1)</script>/", "/api/v1/%00nul/"],
)
def test_hostile_path_is_stored_escaped(api, path):
    response, entry = audited(lambda: api.get(path))

    assert response.status_code == 404
    assert entry.path.startswith("/api/v1/")
    assert raw_controls(entry.path) == []


def test_invalid_utf8_in_path_and_query_is_stored(api):
    # WSGI carries raw bytes as latin-1 text; \xff\xfe is not valid UTF-8.
    response, entry = audited(lambda: api.get("/api/v1/%FF%FE/", QUERY_STRING="q=\xff\xfe&x=%C3%28"))

    assert response.status_code == 404
    assert entry.path.startswith("/api/v1/")
    assert entry.query_string.startswith("q=")
    assert raw_controls(entry.path + entry.query_string) == []


def test_huge_path_is_truncated(api):
    _, entry = audited(lambda: api.get("/api/v1/" + "p" * 10_000 + "/"))

    assert len(entry.path) <= 2048
    assert entry.path.endswith(TRUNCATION_MARK)


def test_chain_verifies_after_hostile_requests(api, settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_FLOOD_SUMMARIES": False}
    hostile = [
        *({"HTTP_USER_AGENT": agent} for agent in HOSTILE_AGENTS),
        {"HTTP_USER_AGENT": "U" * 10_240},
        {"HTTP_X_REQUEST_ID": "r" * 10_240},
        {"HTTP_X_REQUEST_ID": "../../../etc/passwd"},
        {"HTTP_X_FORWARDED_FOR": "6.6.6.6, not-an-ip\n, 10.0.0.1"},
        {"PATH_INFO": "/api/v1/a\nb\x1b[31m<script>/", "QUERY_STRING": "q=\xff\xfe\x00&token=abcdefgh12345678"},
    ]
    for extra in hostile:
        path = extra.pop("PATH_INFO", "/healthz")
        audited(lambda path=path, extra=extra: api.get(path, **extra))
    settings.RAGSECURE = {**settings.RAGSECURE, "TRUSTED_PROXIES": 1}
    audited(lambda: api.get("/healthz", HTTP_X_FORWARDED_FOR="garbage\x00, \u202e1.2.3.4"))

    out = io.StringIO()
    call_command("verify_audit_chain", stdout=out, stderr=io.StringIO())

    assert f"intact: {len(hostile) + 1} entries in 1 chain" in out.getvalue()


# ---------------------------------------------------------------------------
# Nothing secret is stored
# ---------------------------------------------------------------------------


def test_login_password_is_not_stored(api, user):
    _, entry = audited(lambda: api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json"))

    assert PASSWORD not in stored_text(entry)


def test_failed_login_password_is_not_stored(api, user):
    attempt = "guessed-Password-987"

    _, entry = audited(lambda: api.post(TOKEN_URL, {"username": "alice", "password": attempt}, format="json"))

    assert attempt not in stored_text(entry)


def test_issued_tokens_are_not_stored(api, user):
    response, entry = audited(lambda: api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json"))

    text = stored_text(entry)
    for token in (response.json()["access"], response.json()["refresh"]):
        for part in secret_parts(token):
            assert part not in text


def test_authorization_header_is_not_stored(api, user, tokens):
    _, entry = audited(lambda: api.get(ME_URL, **bearer(tokens["access"])))

    text = stored_text(entry)
    for part in secret_parts(tokens["access"]):
        assert part not in text


def test_refresh_token_in_a_body_is_not_stored(api, user, tokens):
    response, entry = audited(lambda: api.post(REFRESH_URL, {"refresh": tokens["refresh"]}, format="json"))

    assert response.status_code == 200
    text = stored_text(entry)
    for token in (tokens["refresh"], response.json()["access"], response.json()["refresh"]):
        for part in secret_parts(token):
            assert part not in text


def test_revoked_refresh_token_is_not_stored(api, user, tokens):
    _, entry = audited(lambda: api.post(REVOKE_URL, {"refresh": tokens["refresh"]}, format="json", **bearer(tokens["access"])))

    text = stored_text(entry)
    for token in (tokens["refresh"], tokens["access"]):
        for part in secret_parts(token):
            assert part not in text


def test_sensitive_query_parameters_are_masked(api):
    query = "page=2&token=tok-abcdef123456&password=hunter2-hunter2&api_key=key-9876543210&q=hello"

    _, entry = audited(lambda: api.get("/api/v1/no-such-thing/", QUERY_STRING=query))

    assert entry.query_string == "page=2&token=[REDACTED]&password=[REDACTED]&api_key=[REDACTED]&q=hello"
    text = stored_text(entry)
    for secret in ("tok-abcdef123456", "hunter2-hunter2", "key-9876543210"):
        assert secret not in text


def test_token_in_a_path_is_not_stored(api, user, tokens):
    _, entry = audited(lambda: api.get(f"/api/v1/leak/{tokens['access']}/"))

    text = stored_text(entry)
    for part in secret_parts(tokens["access"]):
        assert part not in text


def test_token_in_a_user_agent_is_not_stored(api, user, tokens):
    _, entry = audited(lambda: api.get("/healthz", HTTP_USER_AGENT=f"client/1 Bearer {tokens['access']}"))

    text = stored_text(entry)
    for part in secret_parts(tokens["access"]):
        assert part not in text


# ---------------------------------------------------------------------------
# No entry, no success
# ---------------------------------------------------------------------------


def refuse_audit_inserts(execute, sql, params, many, context):
    if sql.lstrip().upper().startswith("INSERT") and AuditEntry._meta.db_table in sql:
        raise OperationalError("database is locked")
    return execute(sql, params, many, context)


@pytest.fixture
def audit_unwritable(settings, tmp_path):
    """Neither the database nor the spool takes an entry (the audit directory sits under a plain file)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": str(blocker / "audit")}
    with connection.execute_wrapper(refuse_audit_inserts):
        yield


def test_request_whose_entry_cannot_be_recorded_fails_503(api, audit_unwritable):
    response = api.get("/healthz")

    assert_error(response, 503, "service_unavailable")


def test_login_whose_entry_cannot_be_recorded_hands_out_no_tokens(api, user, audit_unwritable):
    response = api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")

    assert_error(response, 503, "service_unavailable")
    assert b"access" not in response.content
    assert b"refresh" not in response.content
