"""Audit export: CSV that no spreadsheet evaluates, JSON lines equal to the stored rows, streamed in chunks."""

import csv
import io
import json
from datetime import datetime, timedelta
from itertools import islice

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import User
from audit.chain import ChainWriter, audit_key
from audit.export import export_csv, export_jsonl, spreadsheet_safe
from audit.models import AuditEntry
from audit.services import audit_entry_write, audit_fields
from tests.conftest import PASSWORD, bearer

ENTRIES = "/admin/audit/auditentry/"
HYPERLINK = '=HYPERLINK("http://evil","x")'
COLUMNS = [
    "id",
    "created_at",
    "request_id",
    "client_request_id",
    "actor_id",
    "username",
    "auth_kind",
    "token_jti",
    "scopes",
    "method",
    "path",
    "query_string",
    "status",
    "duration_ms",
    "client_ip",
    "user_agent",
    "action",
    "outcome",
    "detail",
    "chain_id",
    "seq",
    "mac",
]


def write(**fields) -> AuditEntry:
    """An entry written the way the middleware writes one (cleaned, sealed, stored)."""
    values = {"action": "http.request", "outcome": "allowed", "auth_kind": "anonymous", "method": "GET", "path": "/healthz", "status": 200}
    values.update(fields)
    return AuditEntry.objects.get(pk=audit_entry_write(audit_fields(**values))["id"])


def entry_of(response) -> AuditEntry:
    return AuditEntry.objects.get(request_id=response["X-Request-ID"])


def csv_rows(entries) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(export_csv(entries)))))


def csv_row(entry: AuditEntry) -> dict[str, str]:
    header, *rows = csv_rows([entry])
    [row] = rows
    return dict(zip(header, row, strict=True))


@pytest.fixture
def requests_made(make_user) -> list[AuditEntry]:
    """A failed login, a login and an authenticated call, each with its entry."""
    make_user("alice")
    api = Client(HTTP_HOST="localhost", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64)")
    failed = api.post("/api/v1/auth/token/", {"username": "alice", "password": "wrong-password-1"}, content_type="application/json")
    assert failed.status_code == 401
    login = api.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, content_type="application/json")
    assert login.status_code == 200
    me = api.get("/api/v1/auth/me/?page=2", HTTP_X_REQUEST_ID="client-42", **bearer(login.json()["access"]))
    assert me.status_code == 200
    return [entry_of(failed), entry_of(login), entry_of(me)]


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------


@pytest.mark.redis
def test_csv_header_names_the_columns(requests_made):
    header, *rows = csv_rows(requests_made)
    assert header == COLUMNS
    assert len(rows) == 3
    assert all(len(row) == len(COLUMNS) for row in rows)


@pytest.mark.redis
def test_csv_rows_hold_the_entries(requests_made):
    for entry in requests_made:
        row = csv_row(entry)
        assert row["id"] == str(entry.id)
        assert datetime.fromisoformat(row["created_at"]) == entry.created_at
        for name in (
            "request_id",
            "client_request_id",
            "username",
            "auth_kind",
            "token_jti",
            "method",
            "path",
            "query_string",
            "user_agent",
            "action",
            "outcome",
            "chain_id",
            "mac",
        ):
            assert row[name] == getattr(entry, name), name
        assert row["status"] == str(entry.status)
        assert row["seq"] == str(entry.seq)
        assert row["client_ip"] == "127.0.0.1"
        assert row["actor_id"] == ("" if entry.actor_id is None else str(entry.actor_id))
        assert json.loads(row["scopes"]) == entry.scopes
        assert json.loads(row["detail"]) == entry.detail
    me = csv_row(requests_made[2])
    assert (me["username"], me["auth_kind"], me["status"], me["client_request_id"]) == ("alice", "jwt", "200", "client-42")
    failed = csv_row(requests_made[0])
    assert (failed["username"], failed["outcome"], failed["status"]) == ("alice", "denied", "401")


def test_csv_export_of_nothing_is_the_header():
    assert csv_rows([]) == [COLUMNS]


@pytest.mark.parametrize(
    "field, value",
    [
        ("path", HYPERLINK),
        ("user_agent", HYPERLINK),
        ("username", "@SUM(1+1)"),
        ("user_agent", "+cmd|' /C calc'!A0"),
        ("client_request_id", "-2-3"),
        ("query_string", "|calc"),
        ("username", "%0Acmd"),
        ("action", "=1+1"),
    ],
)
def test_formula_cell_is_neutralised(field, value):
    entry = write(**{field: value})
    assert getattr(entry, field) == value
    assert csv_row(entry)[field] == "'" + value


def test_formula_user_agent_of_a_real_request_is_neutralised(transactional_db):
    response = Client(HTTP_HOST="localhost", HTTP_USER_AGENT=HYPERLINK).get("/healthz")
    assert response.status_code == 200
    row = csv_row(entry_of(response))
    assert row["user_agent"] == "'" + HYPERLINK
    assert row["path"] == "/healthz"


@pytest.mark.redis
def test_formula_username_claimed_at_login_is_neutralised(transactional_db):
    response = Client(HTTP_HOST="localhost").post(
        "/api/v1/auth/token/", {"username": "=cmd|' /C calc'!A0", "password": "wrong-password-1"}, content_type="application/json"
    )
    assert response.status_code == 401
    assert csv_row(entry_of(response))["username"] == "'=cmd|' /C calc'!A0"


@pytest.mark.parametrize("value", ["\t=1+1", "\r=1+1", "\n=1+1", "=1+1", "+1", "-1+1", "@A1", "|x", "%x"])
def test_every_formula_prefix_is_neutralised(value):
    assert spreadsheet_safe(value) == "'" + value


@pytest.mark.parametrize("field", ["path", "user_agent"])
def test_raw_tab_or_carriage_return_cell_is_neutralised(field):
    # Rows loaded from elsewhere (a spool replay, an older release) may hold raw control characters.
    entries = [AuditEntry(created_at=timezone.now(), **{field: "\t=1+1"}), AuditEntry(created_at=timezone.now(), **{field: "\r=1+1"})]
    _, tab, carriage = csv_rows(entries)
    column = COLUMNS.index(field)
    assert tab[column] == "'\t=1+1"
    assert carriage[column] == "'\r=1+1"


@pytest.mark.parametrize(
    "field, value",
    [
        ("path", "/api/v1/auth/me/"),
        ("user_agent", "Mozilla/5.0 (X11; Linux) a=b+c-d@e|f%g"),
        ("username", "alice"),
        ("username", "'already-quoted"),
        ("query_string", "page=2&size=-1"),
        ("client_request_id", "req.42_a-b"),
    ],
)
def test_ordinary_value_is_untouched(field, value):
    assert csv_row(write(**{field: value}))[field] == value


# ---------------------------------------------------------------------------
# JSON lines
# ---------------------------------------------------------------------------


def stored(entry: AuditEntry) -> dict:
    return {name: getattr(entry, name) for name in COLUMNS if name not in ("id", "created_at")}


@pytest.mark.redis
def test_jsonl_is_one_object_per_entry_equal_to_the_rows(requests_made):
    hostile = write(user_agent="evil\nnext line\x1b[31m\u2028", path="/x\r\ny", username="bob\x00")
    entries = [*requests_made, hostile]
    lines = "".join(export_jsonl(entries)).split("\n")
    assert lines[-1] == ""
    records = [json.loads(line) for line in lines[:-1]]
    assert len(records) == len(entries)
    for record, entry in zip(records, entries, strict=True):
        entry.refresh_from_db()
        assert isinstance(record, dict)
        assert set(record) == set(COLUMNS)
        assert record["id"] == str(entry.id)
        assert datetime.fromisoformat(record["created_at"]) == entry.created_at
        assert {name: value for name, value in record.items() if name not in ("id", "created_at")} == stored(entry)


def test_jsonl_escapes_raw_control_characters():
    raw = "line one\nline two\r\u2028\u2029\x00\x1b[2J"
    entries = [AuditEntry(created_at=timezone.now(), path=raw, user_agent=raw, username=raw, detail={"prompt": raw}) for _ in range(3)]
    body = "".join(export_jsonl(entries))
    assert body.count("\n") == 3
    assert len(body.splitlines()) == 3
    for char in "\r\u2028\u2029\x00\x1b":
        assert char not in body
    for line in body.splitlines():
        record = json.loads(line)
        assert record["path"] == record["user_agent"] == record["username"] == record["detail"]["prompt"] == raw


# ---------------------------------------------------------------------------
# Large exports stream
# ---------------------------------------------------------------------------


def bulk_entries(count: int) -> None:
    """`count` sealed entries of a private chain, stored in batches."""
    writer, key, now = ChainWriter(), audit_key(), timezone.now()
    rows = [
        AuditEntry(
            **writer.seal(
                audit_fields(
                    action="http.request",
                    outcome="denied",
                    auth_kind="jwt",
                    username=f"user{n % 7}",
                    method="GET",
                    path=f"/bulk/{n}",
                    status=403,
                    user_agent="bench-client/1.0",
                    created_at=now - timedelta(seconds=count - n),
                ),
                key,
            )
        )
        for n in range(count)
    ]
    AuditEntry.objects.bulk_create(rows, batch_size=500)


class CountingIterator:
    """Wraps an iterable and counts how many items were taken."""

    def __init__(self, items) -> None:
        self.items, self.taken = iter(items), 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self.items)
        self.taken += 1
        return item


def test_large_csv_export_streams_in_chunks():
    bulk_entries(3000)
    source = CountingIterator(AuditEntry.objects.order_by("created_at").iterator(chunk_size=1000))
    chunks = export_csv(source)
    first = next(chunks)
    assert source.taken < 3000  # the first chunk left before the whole table was read
    rest = list(chunks)
    assert rest
    rows = list(csv.reader(io.StringIO(first + "".join(rest))))
    assert rows[0] == COLUMNS
    assert len(rows) == 3001
    assert [row[COLUMNS.index("path")] for row in rows[1:]] == [f"/bulk/{n}" for n in range(3000)]


def test_large_jsonl_export_streams_line_by_line():
    bulk_entries(3000)
    source = CountingIterator(AuditEntry.objects.order_by("created_at").iterator(chunk_size=1000))
    lines = export_jsonl(source)
    head = list(islice(lines, 10))
    assert source.taken < 3000
    assert len(head) + sum(1 for _ in lines) == 3000


@pytest.mark.redis
def test_admin_export_of_everything_is_streamed(transactional_db):
    call_command("bootstrap", stdout=io.StringIO())
    bulk_entries(3000)
    viewer = User.objects.create_user(username="vera", password=PASSWORD, is_staff=True)
    viewer.groups.add(Group.objects.get(name="security-viewer"))
    client = Client(HTTP_HOST="localhost")
    client.force_login(viewer)
    some = AuditEntry.objects.filter(path="/bulk/0").get()
    response = client.post(ENTRIES, {"action": "export_as_csv", "_selected_action": [str(some.pk)], "select_across": "1", "index": "0"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    chunks = list(response.streaming_content)
    assert len(chunks) > 1
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode("utf-8"))))
    assert sum(1 for row in rows if row["path"].startswith("/bulk/")) == 3000
