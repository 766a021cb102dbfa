"""The audit admin: security staff browse, filter, search and export entries; nobody edits them; every value is escaped."""

import csv
import io
import json
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.forms.models import model_to_dict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import path
from django.utils import timezone
from django.utils.html import escape
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.tokens import AccessToken
from audit.models import AuditCheckpoint, AuditEntry
from audit.services import audit_checkpoint_write, audit_entry_write, audit_fields
from ragsecure.urls import urlpatterns as project_urlpatterns
from tests.conftest import PASSWORD, bearer

pytestmark = [pytest.mark.redis, pytest.mark.urls(__name__)]

ENTRIES = "/admin/audit/auditentry/"
CHECKPOINTS = "/admin/audit/auditcheckpoint/"
USERS = "/admin/accounts/user/"
ROLES = ("superuser", "security-viewer", "security-operator")
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
RAW_TAGS = (b"<script>alert(1)", b"<img src=x")
BOB_IP = "203.0.113.9"
NEIGHBOUR_IP = "203.0.113.90"
CLIENT_REQUEST_ID = "case-4711-alpha"


# ---------------------------------------------------------------------------
# Probe views (this module is its own URLconf): a scope alice's token lacks, and an object she does not own
# ---------------------------------------------------------------------------


class ScopedProbeApi(APIView):
    required_scopes = ("query:read",)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class MissingObjectApi(APIView):
    required_scopes = ("documents:read",)

    def get(self, request: Request, pk: int) -> Response:
        raise NotFound()


urlpatterns = [
    path("api/v1/test/audit/scoped/", ScopedProbeApi.as_view(), name="audit-probe-scoped"),
    path("api/v1/test/audit/objects/<int:pk>/", MissingObjectApi.as_view(), name="audit-probe-object"),
    *project_urlpatterns,
]
SCOPED = "/api/v1/test/audit/scoped/"


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def groups(transactional_db):
    call_command("bootstrap", stdout=io.StringIO())


def browser(user: User) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def make_staff(username: str, role: str) -> User:
    if role == "superuser":
        return User.objects.create_superuser(username=username, password=PASSWORD)
    staff = User.objects.create_user(username=username, password=PASSWORD, is_staff=True)
    if role:
        staff.groups.add(Group.objects.get(name=role))
    return staff


@pytest.fixture(params=ROLES)
def staff(request, groups) -> Client:
    """A browser logged in as a superuser, a security-viewer or a security-operator."""
    return browser(make_staff("sam", request.param))


@pytest.fixture
def viewer(groups) -> Client:
    return browser(make_staff("vera", "security-viewer"))


@pytest.fixture
def operator(groups) -> Client:
    return browser(make_staff("otto", "security-operator"))


def entry_of(response) -> AuditEntry:
    """The audit entry a response's request produced."""
    return AuditEntry.objects.get(request_id=response["X-Request-ID"])


def user_requests(username: str, *, object_id: int, **extra) -> dict[str, AuditEntry]:
    """A failed login (401), a login, a scope denial (403), a missing object (404) and an allowed call, as `username`."""
    api = Client(HTTP_HOST="localhost", **extra)
    made = {}
    response = api.post("/api/v1/auth/token/", {"username": username, "password": "wrong-password-123"}, content_type="application/json")
    assert response.status_code == 401
    made["401"] = entry_of(response)
    response = api.post(
        "/api/v1/auth/token/", {"username": username, "password": PASSWORD, "scopes": ["documents:read"]}, content_type="application/json"
    )
    assert response.status_code == 200
    made["login"] = entry_of(response)
    access = response.json()["access"]
    response = api.get(SCOPED, HTTP_X_REQUEST_ID=f"{CLIENT_REQUEST_ID}-{username}", **bearer(access))
    assert response.status_code == 403
    made["403"] = entry_of(response)
    response = api.get(f"/api/v1/test/audit/objects/{object_id}/", **bearer(access))
    assert response.status_code == 404
    made["404"] = entry_of(response)
    response = api.get("/api/v1/auth/me/", **bearer(access))
    assert response.status_code == 200
    made["200"] = entry_of(response)
    made["jti"] = AccessToken(access)["jti"]
    return made


@pytest.fixture
def traffic(make_user) -> dict[str, AuditEntry]:
    """Requests of alice and bob (bob from BOB_IP), and one anonymous request from a neighbouring address."""
    make_user("alice")
    make_user("bob")
    alice = user_requests("alice", object_id=4242)
    bob = user_requests("bob", object_id=777, REMOTE_ADDR=BOB_IP)
    neighbour = Client(HTTP_HOST="localhost", REMOTE_ADDR=NEIGHBOUR_IP).get("/api/v1/auth/me/")
    assert neighbour.status_code == 401
    return {
        **{f"alice_{key}": value for key, value in alice.items()},
        **{f"bob_{key}": value for key, value in bob.items()},
        "neighbour": entry_of(neighbour),
    }


def aged_entry(age: timedelta, **fields) -> AuditEntry:
    """A sealed entry written `age` ago (the writer takes the time of the event)."""
    values = {"action": "http.request", "outcome": "allowed", "auth_kind": "anonymous", "method": "GET", "path": "/healthz", "status": 200}
    values.update(fields)
    sealed = audit_entry_write(audit_fields(created_at=timezone.now() - age, **values))
    return AuditEntry.objects.get(pk=sealed["id"])


@pytest.fixture
def aged() -> dict[str, AuditEntry]:
    return {
        "30m": aged_entry(timedelta(minutes=30), path="/aged/30m"),
        "5h": aged_entry(timedelta(hours=5), path="/aged/5h"),
        "3d": aged_entry(timedelta(days=3), path="/aged/3d"),
        "10d": aged_entry(timedelta(days=10), path="/aged/10d"),
    }


@pytest.fixture
def checkpoint(traffic) -> AuditCheckpoint:
    audit_checkpoint_write()
    return AuditCheckpoint.objects.get()


def listed(client: Client, url: str) -> set:
    """The entries the changelist at `url` shows."""
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return {entry.pk for entry in response.context["cl"].result_list}


def change_url(obj) -> str:
    return f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/change/"


def delete_url(obj) -> str:
    return f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/delete/"


def query(url: str, **params) -> str:
    return f"{url}?{urlencode(params)}"


def export(client: Client, url: str, fmt: str, entries) -> tuple:
    """Run the export action on `entries`; returns (response, body text)."""
    response = client.post(url, {"action": f"export_as_{fmt}", "_selected_action": [str(entry.pk) for entry in entries]})
    assert response.status_code == 200, response.status_code
    return response, b"".join(response.streaming_content).decode("utf-8")


def exported_ids(fmt: str, body: str) -> list[str]:
    if fmt == "csv":
        return [row["id"] for row in csv.DictReader(io.StringIO(body))]
    return [json.loads(line)["id"] for line in body.splitlines()]


# ---------------------------------------------------------------------------
# Every page, for every staff role
# ---------------------------------------------------------------------------


def test_changelist_lists_entries(staff, traffic):
    response = staff.get(ENTRIES)
    assert response.status_code == 200
    shown = {entry.pk for entry in response.context["cl"].result_list}
    assert {traffic["alice_403"].pk, traffic["bob_404"].pk} <= shown
    assert b"/api/v1/test/audit/objects/4242/" in response.content


def test_detail_page_shows_entry_and_verdicts(staff, traffic):
    entry = traffic["alice_403"]
    response = staff.get(change_url(entry))
    assert response.status_code == 200
    for text in (entry.request_id, CLIENT_REQUEST_ID, entry.mac, "insufficient_scope", SCOPED, traffic["alice_jti"]):
        assert text.encode() in response.content, text
    assert b'name="_save"' not in response.content


def search_urls(traffic) -> list[str]:
    alice = traffic["alice_403"]
    return [
        query(ENTRIES, q=term)
        for term in ("/objects/4242/", alice.request_id, f"{CLIENT_REQUEST_ID}-alice", BOB_IP, "alice", traffic["alice_jti"])
    ]


def filter_urls(entry: AuditEntry) -> list[str]:
    day = timezone.localtime(entry.created_at)
    return [
        query(ENTRIES, within="1h"),
        query(ENTRIES, within="24h"),
        query(ENTRIES, within="7d"),
        query(ENTRIES, outcome__exact="denied"),
        query(ENTRIES, status=403),
        query(ENTRIES, action="auth.token"),
        query(ENTRIES, auth_kind__exact="jwt"),
        query(ENTRIES, username="alice"),
        query(ENTRIES, username="alice", outcome__exact="denied", within="1h"),
        query(ENTRIES, created_at__gte=str(day.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6))),
        query(ENTRIES, created_at__year=day.year),
        query(ENTRIES, created_at__year=day.year, created_at__month=day.month),
        query(ENTRIES, created_at__year=day.year, created_at__month=day.month, created_at__day=day.day),
    ]


@pytest.mark.database
def test_every_search_filter_and_date_page_answers(staff, traffic):
    for url in search_urls(traffic) + filter_urls(traffic["alice_403"]):
        response = staff.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert response.context["cl"].result_list, url


def test_checkpoint_pages(staff, checkpoint):
    assert staff.get(CHECKPOINTS).status_code == 200
    detail = staff.get(change_url(checkpoint))
    assert detail.status_code == 200
    assert checkpoint.entry_mac.encode() in detail.content
    for url in (
        query(CHECKPOINTS, q=checkpoint.chain_id),
        query(CHECKPOINTS, kind="checkpoint"),
        query(CHECKPOINTS, created_at__year=checkpoint.created_at.year),
    ):
        response = staff.get(url)
        assert response.status_code == 200, url
        assert checkpoint.pk in {row.pk for row in response.context["cl"].result_list}, url


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_every_role_can_export(staff, traffic, fmt):
    chosen = [traffic["alice_403"], traffic["bob_404"]]
    response, body = export(staff, ENTRIES, fmt, chosen)
    assert "attachment" in response["Content-Disposition"]
    assert sorted(exported_ids(fmt, body)) == sorted(str(entry.pk) for entry in chosen)


def test_export_of_everything_records_how_many_rows_it_exported(viewer, traffic):
    before = set(AuditEntry.objects.values_list("pk", flat=True))
    response = viewer.post(
        ENTRIES, {"action": "export_as_csv", "_selected_action": [str(traffic["alice_403"].pk)], "select_across": "1", "index": "0"}
    )
    assert response.status_code == 200
    exported = {row["id"] for row in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8")))}
    [event] = entry_of(response).detail["events"]
    assert event["count"] == len(exported)
    assert event["targets"] == {"filters": {}, "selection": "all matching"}
    assert exported == {str(pk) for pk in before}


# ---------------------------------------------------------------------------
# Search and filters select the right entries
# ---------------------------------------------------------------------------


@pytest.mark.database
@pytest.mark.parametrize(
    "term, target, decoy",
    [
        (lambda traffic: "/objects/4242/", "alice_404", "bob_404"),
        (lambda traffic: traffic["alice_403"].request_id, "alice_403", "alice_404"),
        (lambda traffic: f"{CLIENT_REQUEST_ID}-alice", "alice_403", "bob_403"),
        (lambda traffic: BOB_IP, "bob_403", "neighbour"),
        (lambda traffic: "alice", "alice_401", "bob_401"),
        (lambda traffic: traffic["alice_jti"], "alice_200", "bob_200"),
    ],
    ids=["path", "request-id", "client-request-id", "ip", "username", "token-jti"],
)
def test_search_finds_entry(viewer, traffic, term, target, decoy):
    shown = listed(viewer, query(ENTRIES, q=term(traffic)))
    assert traffic[target].pk in shown
    assert traffic[decoy].pk not in shown


@pytest.mark.database
def test_a_request_or_token_id_is_looked_up_exactly(viewer, traffic):
    """A 32-hex term (a server request id, a token id) is an exact lookup through the indexes, not a text scan: an
    entry that merely mentions the id in its path is not among the results."""
    target = traffic["alice_403"]
    mention = aged_entry(timedelta(minutes=1), path=f"/api/v1/documents/{target.request_id}/")
    with CaptureQueriesContext(connection) as captured:
        shown = listed(viewer, query(ENTRIES, q=target.request_id.upper()))
    assert shown == {target.pk}
    assert mention.pk not in shown
    scans = [sql for sql in (item["sql"] for item in captured.captured_queries) if "request_id" in sql and " LIKE " in sql]
    assert scans == []  # no substring scan of the request ids


@pytest.mark.database
def test_every_request_of_a_leaked_token_is_found(viewer, traffic):
    jti = traffic["alice_jti"]
    shown = listed(viewer, query(ENTRIES, q=jti))
    expected = set(AuditEntry.objects.filter(token_jti=jti).values_list("pk", flat=True))
    assert expected and shown == expected
    assert traffic["bob_200"].pk not in shown


@pytest.mark.database
def test_an_id_term_without_an_exact_match_is_searched_as_text(viewer, traffic):
    unknown = "0123456789abcdef0123456789abcdef"
    mention = aged_entry(timedelta(minutes=1), path=f"/api/v1/documents/{unknown}/")
    assert listed(viewer, query(ENTRIES, q=unknown)) == {mention.pk}


@pytest.mark.parametrize(
    "params, targets, decoys",
    [
        ({"outcome__exact": "denied"}, ["alice_401", "alice_403", "bob_404", "neighbour"], ["alice_200", "alice_login"]),
        ({"status": "404"}, ["alice_404", "bob_404"], ["alice_403", "alice_200"]),
        ({"action": "auth.token"}, ["alice_401", "alice_login", "bob_login"], ["alice_403", "alice_200"]),
        ({"auth_kind__exact": "jwt"}, ["alice_403", "alice_404", "alice_200"], ["alice_401", "alice_login", "neighbour"]),
        ({"auth_kind__exact": "anonymous"}, ["alice_401", "neighbour"], ["alice_403", "alice_login"]),
        ({"username": "alice"}, ["alice_401", "alice_login", "alice_403", "alice_404", "alice_200"], ["bob_401", "bob_403"]),
    ],
    ids=["outcome", "status", "action", "auth-kind-jwt", "auth-kind-anonymous", "user"],
)
def test_filter_selects_entries(viewer, traffic, params, targets, decoys):
    shown = listed(viewer, query(ENTRIES, **params))
    assert {traffic[name].pk for name in targets} <= shown
    assert not {traffic[name].pk for name in decoys} & shown


@pytest.mark.parametrize("within, inside", [("1h", ["30m"]), ("24h", ["30m", "5h"]), ("7d", ["30m", "5h", "3d"])])
def test_time_filter_keeps_recent_entries(viewer, aged, within, inside):
    shown = listed(viewer, query(ENTRIES, within=within))
    assert {entry.pk for entry in aged.values() if entry.pk in shown} == {aged[name].pk for name in inside}


@pytest.mark.database
def test_date_filter_past_seven_days(viewer, aged):
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    shown = listed(viewer, query(ENTRIES, created_at__gte=str(today - timedelta(days=6)), created_at__lt=str(today + timedelta(days=1))))
    assert aged["30m"].pk in shown
    assert aged["10d"].pk not in shown


@pytest.mark.database
def test_date_hierarchy_drills_down_to_a_day(viewer, aged):
    day = timezone.localtime(aged["10d"].created_at)
    shown = listed(viewer, query(ENTRIES, created_at__year=day.year, created_at__month=day.month, created_at__day=day.day))
    assert aged["10d"].pk in shown
    assert not {aged["30m"].pk, aged["3d"].pk} & shown


def test_user_filter_offers_usernames(viewer, traffic):
    response = viewer.get(ENTRIES)
    assert b"?username=alice" in response.content
    assert b"?username=bob" in response.content


# ---------------------------------------------------------------------------
# Read-only for everyone, superusers included
# ---------------------------------------------------------------------------


def snapshot(obj) -> dict:
    obj.refresh_from_db()
    return model_to_dict(obj, fields=[field.name for field in obj._meta.concrete_fields])


def test_entry_cannot_be_added(staff, traffic):
    count = AuditEntry.objects.filter(path="/forged").count()
    assert staff.get(f"{ENTRIES}add/").status_code == 403
    forged = {"action": "forged", "outcome": "allowed", "auth_kind": "anonymous", "path": "/forged", "status": "200", "_save": "Save"}
    assert staff.post(f"{ENTRIES}add/", forged).status_code == 403
    assert AuditEntry.objects.filter(path="/forged").count() == count == 0


def test_entry_change_is_refused_and_changes_nothing(staff, traffic):
    entry = traffic["alice_403"]
    before = snapshot(entry)
    edit = {**{key: str(value) for key, value in before.items() if value is not None}}
    edit.update({"status": "200", "outcome": "allowed", "path": "/innocent", "username": "nobody", "_save": "Save"})
    response = staff.post(change_url(entry), edit)
    assert response.status_code == 403
    assert snapshot(entry) == before


def test_entry_cannot_be_deleted(staff, traffic):
    entry = traffic["alice_403"]
    assert staff.get(delete_url(entry)).status_code == 403
    assert staff.post(delete_url(entry), {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_bulk_delete_is_not_offered(staff, traffic):
    entry = traffic["alice_403"]
    response = staff.get(ENTRIES)
    choices = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in choices
    assert b"delete_selected" not in response.content
    staff.post(ENTRIES, {"action": "delete_selected", "_selected_action": [str(entry.pk)], "post": "yes"})
    staff.post(ENTRIES, {"action": "delete_selected", "_selected_action": [str(entry.pk)], "index": "0"})
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_checkpoint_admin_is_read_only(staff, checkpoint):
    before = snapshot(checkpoint)
    assert staff.get(f"{CHECKPOINTS}add/").status_code == 403
    forged = {"chain_id": "forged", "seq": "1", "entry_mac": "0" * 64, "kind": "anchor", "mac": "0" * 64, "_save": "Save"}
    assert staff.post(f"{CHECKPOINTS}add/", forged).status_code == 403
    assert staff.post(change_url(checkpoint), {**forged, "chain_id": checkpoint.chain_id}).status_code == 403
    assert staff.get(delete_url(checkpoint)).status_code == 403
    assert staff.post(delete_url(checkpoint), {"post": "yes"}).status_code == 403
    listing = staff.get(CHECKPOINTS)
    assert b"delete_selected" not in listing.content
    staff.post(CHECKPOINTS, {"action": "delete_selected", "_selected_action": [str(checkpoint.pk)], "post": "yes"})
    assert AuditCheckpoint.objects.count() == 1
    assert snapshot(checkpoint) == before


def test_staff_without_audit_permission_is_refused(groups, traffic, checkpoint):
    outsider = browser(make_staff("stan", ""))
    entry = traffic["alice_403"]
    assert outsider.get(ENTRIES).status_code == 403
    assert outsider.get(change_url(entry)).status_code == 403
    assert outsider.get(CHECKPOINTS).status_code == 403
    assert outsider.get(change_url(checkpoint)).status_code == 403
    response = outsider.post(ENTRIES, {"action": "export_as_csv", "_selected_action": [str(entry.pk)]})
    assert response.status_code == 403
    assert not AuditEntry.objects.filter(action="admin.audit_export").exists()


# ---------------------------------------------------------------------------
# Attacker text is escaped wherever it is rendered
# ---------------------------------------------------------------------------


@pytest.fixture
def hostile(operator, make_user) -> list[AuditEntry]:
    """Entries whose path, user agent, claimed username and detail (an admin action's reason) carry markup."""
    target = make_user("alice")
    entries = []
    for number, payload in enumerate((SCRIPT, IMG)):
        # From two addresses: the second 404 from one address would be counted into a flood summary, not written in full.
        client = Client(HTTP_HOST="localhost", HTTP_USER_AGENT=payload, REMOTE_ADDR=f"198.51.100.{60 + number}")
        response = client.get("/api/v1/" + quote(payload) + "/")
        assert response.status_code == 404
        entries.append(entry_of(response))
        response = client.post(
            "/api/v1/auth/token/", {"username": payload, "password": "wrong-password-123"}, content_type="application/json"
        )
        assert response.status_code == 401
        entries.append(entry_of(response))
        response = operator.post(USERS, {"action": "revoke_all_tokens", "_selected_action": [target.pk], "apply": "1", "reason": payload})
        assert response.status_code == 302
        entries.append(entry_of(response))
    return entries


def assert_escaped(content: bytes) -> None:
    for raw in RAW_TAGS:
        assert raw not in content, raw
    for payload in (SCRIPT, IMG):
        assert escape(payload).encode() in content, payload


def test_changelist_escapes_attacker_text(staff, hostile):
    response = staff.get(ENTRIES)
    assert response.status_code == 200
    assert {entry.pk for entry in hostile} <= {entry.pk for entry in response.context["cl"].result_list}
    assert_escaped(response.content)


def test_search_for_markup_is_escaped(staff, hostile):
    response = staff.get(query(ENTRIES, q=SCRIPT))
    assert response.status_code == 200
    assert hostile[0].pk in {entry.pk for entry in response.context["cl"].result_list}
    for raw in RAW_TAGS:
        assert raw not in response.content
    assert escape(SCRIPT).encode() in response.content


@pytest.mark.parametrize(
    "index, where",
    [
        (0, "path and user agent"),
        (1, "claimed username"),
        (2, "detail"),
        (3, "path and user agent"),
        (4, "claimed username"),
        (5, "detail"),
    ],
)
def test_detail_page_escapes_attacker_text(staff, hostile, index, where):
    entry = hostile[index]
    response = staff.get(change_url(entry))
    assert response.status_code == 200
    for raw in RAW_TAGS:
        assert raw not in response.content, (where, raw)
    payload = SCRIPT if index < 3 else IMG
    assert escape(payload).encode() in response.content, where


# ---------------------------------------------------------------------------
# The reviewer's scenario (issue 3, "Done when")
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_reviewer_filters_exports_and_verifies(viewer, traffic, fmt):
    alice = User.objects.get(username="alice")
    earlier = aged_entry(
        timedelta(hours=2),
        action="http.audit-probe-scoped",
        outcome="denied",
        auth_kind="jwt",
        actor_id=alice.pk,
        username="alice",
        path=SCOPED,
        status=403,
    )
    url = query(ENTRIES, username="alice", outcome__exact="denied", within="1h")
    shown = listed(viewer, url)
    expected = {traffic[name].pk for name in ("alice_401", "alice_403", "alice_404")}
    assert shown == expected
    assert earlier.pk not in shown

    response, body = export(viewer, url, fmt, AuditEntry.objects.filter(pk__in=shown))
    assert sorted(exported_ids(fmt, body)) == sorted(str(pk) for pk in expected)
    rows = list(csv.DictReader(io.StringIO(body))) if fmt == "csv" else [json.loads(line) for line in body.splitlines()]
    assert {(row["username"], row["outcome"]) for row in rows} == {("alice", "denied")}
    assert {str(row["status"]) for row in rows} == {"401", "403", "404"}

    record = entry_of(response)
    assert record.action == "admin.audit_export"
    assert record.username == "vera"
    [event] = [event for event in record.detail["events"] if event["action"] == "admin.audit_export"]
    assert event["count"] == 3
    assert event["format"] == fmt
    # Its targets: the reviewer's filters and the entries exported.
    # The person filtered on is personal data: named in this entry, erasing her later could not reach it.
    assert event["targets"]["filters"] == {"username": "[personal, not recorded]", "outcome__exact": "denied", "within": "1h"}
    assert "alice" not in json.dumps(record.detail)
    assert sorted(event["targets"]["selection"]) == sorted(str(pk) for pk in expected)

    out = io.StringIO()
    call_command("verify_audit_chain", stdout=out, stderr=io.StringIO())
    assert "intact" in out.getvalue()
