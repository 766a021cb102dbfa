"""The document endpoints (list, upload, get, delete) as a client, a second tenant and an attacker see them."""

import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Tier, User
from audit.models import AuditEntry
from documents.models import Chunk, Document
from documents.services import document_create
from tests.conftest import ALL_API_SCOPES, assert_error, bearer, obtain

pytestmark = [pytest.mark.redis, pytest.mark.database]

DOCUMENTS_URL = "/api/v1/documents/"
QUERY_URL = "/api/v1/query/"
FREE_MAX_BYTES = 100_000
# Five characters, eight UTF-8 bytes: sizes are counted in bytes, never characters.
POLISH_WORD = "żółw "
PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


def document_url(document_id) -> str:
    return f"{DOCUMENTS_URL}{document_id}/"


def create(api, access: str, body, **extra):
    return api.post(DOCUMENTS_URL, body, format="json", **bearer(access), **extra)


def upload(api, access: str, name: str, data: bytes, **fields):
    return api.post(DOCUMENTS_URL, {"file": SimpleUploadedFile(name, data), **fields}, format="multipart", **bearer(access))


def listing(api, access: str, query: str = ""):
    return api.get(DOCUMENTS_URL + query, **bearer(access))


def fetch(api, access: str, document_id):
    return api.get(document_url(document_id), **bearer(access))


def delete(api, access: str, document_id):
    return api.delete(document_url(document_id), **bearer(access))


def ask(api, access: str, query: str, top_k: int = 5):
    return api.post(QUERY_URL, {"query": query, "top_k": top_k}, format="json", **bearer(access))


def audited(send) -> tuple[object, AuditEntry]:
    """Send one request; assert it wrote exactly one audit entry, the one carrying the response's X-Request-ID."""
    before = set(AuditEntry.objects.values_list("id", flat=True))
    response = send()
    new = list(AuditEntry.objects.exclude(id__in=before))
    assert len(new) == 1, [(entry.action, entry.path, entry.status) for entry in new]
    assert new[0].request_id == response["X-Request-ID"]
    assert new[0].status == response.status_code
    return response, new[0]


def stored(owner, *, title: str = "notes", content: str = "Plain words about nothing in particular.") -> Document:
    return document_create(owner=owner, title=title, content=content)


def add_rows(owner, count: int) -> list[Document]:
    """`count` documents (without chunks) for listing tests, oldest first."""
    now = timezone.now()
    documents = Document.objects.bulk_create(
        Document(owner=owner, title=f"doc {number:03}", content="x", size=1, content_hash="0" * 64) for number in range(count)
    )
    # Distinct creation times so the newest-first order is unambiguous.
    for number, document in enumerate(documents):
        Document.objects.filter(pk=document.pk).update(created_at=now - timedelta(seconds=count - number))
    return documents


@pytest.fixture
def admin_access(api, make_user) -> str:
    make_user("ada", scopes_granted=(*ALL_API_SCOPES, "admin"))
    return obtain(api, "ada")["access"]


# ---------------------------------------------------------------------------
# Create (JSON)
# ---------------------------------------------------------------------------


def test_create_json_returns_the_documented_shape(api, user, access):
    content = "Rivers carry silt to the sea.\n\nDeltas form where it settles."

    response = create(api, access, {"title": "Rivers", "content": content})

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"id", "title", "created_at", "size", "chunks", "screening"}
    assert body["title"] == "Rivers"
    assert body["size"] == len(content.encode("utf-8"))
    assert isinstance(body["chunks"], int) and not isinstance(body["chunks"], bool) and body["chunks"] >= 1
    assert body["screening"]["status"] == "clean"
    assert isinstance(body["screening"]["score"], float | int)
    created = parse_datetime(body["created_at"])
    assert created is not None and abs(timezone.now() - created) < timedelta(minutes=1)
    document = Document.objects.get(pk=body["id"])
    assert document.owner_id == user.pk
    assert document.content == content
    assert document.chunks.count() == body["chunks"]


def test_create_counts_size_in_utf8_bytes(api, access):
    content = "Ünïcödé 東京 " * 10

    body = create(api, access, {"title": "bytes", "content": content}).json()

    assert body["size"] == len(content.encode("utf-8")) > len(content)


def test_create_ignores_server_set_fields_in_the_body(api, user, bob, access):
    forged_id = str(uuid.uuid4())
    body = {
        "title": "Mine",
        "content": "Some honest text.",
        "id": forged_id,
        "owner": bob.pk,
        "owner_id": bob.pk,
        "created_at": "2000-01-01T00:00:00Z",
        "updated_at": "2000-01-01T00:00:00Z",
        "size": 1,
        "chunks": 999,
        "chunk_count": 999,
        "content_hash": "0" * 64,
        "screening": {"status": "quarantined", "score": 1.0},
        "screening_status": "flagged",
        "screening_score": 0.9,
    }

    response = create(api, access, body)

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["id"] != forged_id
    assert not Document.objects.filter(pk=forged_id).exists()
    document = Document.objects.get(pk=created["id"])
    assert document.owner_id == user.pk
    assert document.size == created["size"] == len(b"Some honest text.")
    assert document.chunk_count == created["chunks"] == 1
    assert document.content_hash != "0" * 64
    assert document.created_at.year == timezone.now().year
    assert document.screening_status == "clean" and created["screening"]["status"] == "clean"
    assert not Document.objects.filter(owner=bob).exists()


def test_create_writes_one_audit_entry_named_documents_create(api, user, access):
    response, entry = audited(lambda: create(api, access, {"title": "t", "content": "Audited words."}))

    assert response.status_code == 201
    assert entry.action == "documents.create"
    assert entry.actor_id == user.pk
    assert entry.method == "POST" and entry.path == DOCUMENTS_URL
    events = entry.detail.get("events", [])
    assert any(event.get("document") == response.json()["id"] for event in events), entry.detail


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "content": "text"},
        {"title": "   \t ", "content": "text"},
        {"title": "t", "content": ""},
        {"title": "t", "content": " \n\t\n "},
        {"content": "text"},
        {"title": "t"},
        {},
        {"title": "x" * 201, "content": "text"},
        {"title": None, "content": "text"},
        {"title": "t", "content": None},
        {"title": "t", "content": ["a", "b"]},
        {"title": {"a": 1}, "content": "text"},
        {"title": "t", "content": "nul \x00 inside"},
        {"title": "nul \x00 title", "content": "text"},
        {"title": "t", "content": "text", "file": "not-a-file.txt"},
    ],
    ids=[
        "empty-title",
        "blank-title",
        "empty-content",
        "blank-content",
        "missing-title",
        "missing-content",
        "empty-object",
        "title-201",
        "null-title",
        "null-content",
        "list-content",
        "object-title",
        "nul-content",
        "nul-title",
        "file-in-json",
    ],
)
def test_create_rejects_bad_json_input(api, access, body):
    response = create(api, access, body)

    error = assert_error(response, 400, "validation_error")
    assert error["fields"]
    assert Document.objects.count() == 0


@pytest.mark.parametrize("raw", ["[]", '["title", "content"]', '"a string"', "42", "true", "null"])
def test_create_rejects_json_that_is_not_an_object(api, access, raw):
    response = api.post(DOCUMENTS_URL, raw, content_type="application/json", **bearer(access))

    assert_error(response, 400, "validation_error")
    assert Document.objects.count() == 0


def test_create_rejects_broken_json(api, access):
    response = api.post(DOCUMENTS_URL, '{"title": "t", "content": ', content_type="application/json", **bearer(access))

    assert_error(response, 400, "malformed_request")


def test_create_title_of_200_characters_is_accepted(api, access):
    response = create(api, access, {"title": "é" * 200, "content": "text"})

    assert response.status_code == 201, response.content
    assert response.json()["title"] == "é" * 200


def test_create_at_exactly_the_tier_limit_in_bytes_is_accepted(api, access):
    content = POLISH_WORD * (FREE_MAX_BYTES // len(POLISH_WORD.encode()))
    assert len(content.encode()) == FREE_MAX_BYTES

    response = create(api, access, {"title": "limit", "content": content})

    assert response.status_code == 201, response.content[:300]
    assert response.json()["size"] == FREE_MAX_BYTES


def test_create_over_the_tier_limit_in_bytes_is_413(api, access):
    # Fewer characters than the limit, more bytes: the limit is in bytes.
    content = POLISH_WORD * (FREE_MAX_BYTES // len(POLISH_WORD.encode())) + "ż"
    assert len(content) < FREE_MAX_BYTES < len(content.encode())

    response, entry = audited(lambda: create(api, access, {"title": "too big", "content": content}))

    assert_error(response, 413, "payload_too_large")
    assert entry.status == 413
    assert Document.objects.count() == 0 and Chunk.objects.count() == 0


def test_body_over_the_request_limit_is_413_before_parsing(api, access):
    content = "a" * (5 * 1024 * 1024)

    response, entry = audited(lambda: create(api, access, {"title": "huge", "content": content}))

    assert_error(response, 413, "payload_too_large")
    assert entry.status == 413
    assert Document.objects.count() == 0


def test_create_limit_follows_the_tier_row(api, user, access):
    Tier.objects.filter(name="free").update(max_document_bytes=10)

    assert create(api, access, {"title": "t", "content": "0123456789"}).status_code == 201
    assert_error(create(api, access, {"title": "t", "content": "0123456789A"}), 413, "payload_too_large")


# ---------------------------------------------------------------------------
# Create (multipart upload)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["field-notes.txt", "field-notes.md", "field-notes.TXT"])
def test_upload_text_file_title_defaults_to_the_stem(api, user, access, name):
    data = b"# Field notes\n\nThe heron waited by the weir."

    response = upload(api, access, name, data)

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"id", "title", "created_at", "size", "chunks", "screening"}
    assert body["title"] == "field-notes"
    assert body["size"] == len(data)
    assert body["screening"]["status"] == "clean"
    assert Document.objects.get(pk=body["id"], owner=user).content == data.decode()


def test_upload_with_explicit_title(api, access):
    response = upload(api, access, "a.md", b"Some markdown text.", title="Chosen title")

    assert response.status_code == 201, response.content
    assert response.json()["title"] == "Chosen title"


def test_upload_with_a_bom_is_accepted_and_the_bom_dropped(api, access):
    response = upload(api, access, "bom.txt", b"\xef\xbb\xbfWith a byte order mark.")

    assert response.status_code == 201, response.content
    content = fetch(api, access, response.json()["id"]).json()["content"]
    assert content == "With a byte order mark."


def test_upload_over_the_tier_limit_is_413(api, access):
    data = (POLISH_WORD * (FREE_MAX_BYTES // len(POLISH_WORD.encode())) + "ż").encode()

    response = upload(api, access, "big.txt", data)

    assert_error(response, 413, "payload_too_large")
    assert Document.objects.count() == 0


def test_upload_at_the_tier_limit_is_accepted(api, access):
    data = (POLISH_WORD * (FREE_MAX_BYTES // len(POLISH_WORD.encode()))).encode()

    response = upload(api, access, "exact.txt", data)

    assert response.status_code == 201, response.content[:300]
    assert response.json()["size"] == FREE_MAX_BYTES


@pytest.mark.parametrize(
    "data",
    [b"text with a \x00 NUL byte", b"\xff\xfe not utf-8", b"caf\xe9 latin-1", b"\xc3", PNG_HEADER, b"bell \x07 and escape \x1b"],
    ids=["nul", "utf16-bom", "latin1", "truncated-utf8", "png", "control-bytes"],
)
def test_upload_of_binary_or_invalid_utf8_is_refused(api, access, data):
    response = upload(api, access, "data.txt", data)

    error = assert_error(response, 400, "validation_error")
    assert "file" in error["fields"]
    assert Document.objects.count() == 0


@pytest.mark.parametrize("name", ["report.pdf", "tool.exe", "README", "notes.txt.exe", "archive.tar.gz", ".txt", "notes.html"])
def test_upload_with_a_wrong_extension_is_refused(api, access, name):
    response = upload(api, access, name, b"Plain text nonetheless.")

    error = assert_error(response, 400, "validation_error")
    assert "file" in error["fields"]
    assert Document.objects.count() == 0


def test_upload_with_content_as_well_is_refused(api, access):
    response = upload(api, access, "notes.txt", b"From the file.", content="From the field.", title="both")

    assert_error(response, 400, "validation_error")
    assert Document.objects.count() == 0


@pytest.mark.parametrize(
    "data", [b"", b"  \n\n\t  ", b"\xef\xbb\xbf", b"\xef\xbb\xbf \r\n"], ids=["empty", "blank", "bom-only", "bom-blank"]
)
def test_upload_of_an_empty_or_blank_file_is_refused(api, access, data):
    # A JSON body with blank content is refused; an uploaded file with blank text must be too.
    response = upload(api, access, "blank.txt", data)

    assert_error(response, 400, "validation_error")
    assert Document.objects.count() == 0


def test_multipart_without_a_file_needs_content(api, access):
    response = api.post(DOCUMENTS_URL, {"title": "form only"}, format="multipart", **bearer(access))

    assert_error(response, 400, "validation_error")


def test_multipart_with_content_field_works_like_json(api, access):
    response = api.post(DOCUMENTS_URL, {"title": "form", "content": "Form text."}, format="multipart", **bearer(access))

    assert response.status_code == 201, response.content
    assert response.json()["size"] == len(b"Form text.")


# ---------------------------------------------------------------------------
# List
# ---------------------------------------------------------------------------


def test_list_is_paginated_newest_first_without_content(api, user, access):
    add_rows(user, 3)

    response = listing(api, access)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3 and body["next"] is None and body["previous"] is None
    assert [item["title"] for item in body["results"]] == ["doc 002", "doc 001", "doc 000"]
    for item in body["results"]:
        assert set(item) == {"id", "title", "created_at", "size", "chunks", "screening"}


def test_list_pages_follow_page_and_page_size(api, user, access):
    add_rows(user, 25)

    first = listing(api, access, "?page_size=10").json()
    third = listing(api, access, "?page_size=10&page=3").json()

    assert first["count"] == 25
    assert len(first["results"]) == 10
    assert first["next"] and "page=2" in first["next"] and first["previous"] is None
    assert len(third["results"]) == 5 and third["next"] is None and third["previous"]
    default = listing(api, access).json()
    assert len(default["results"]) == 20


def test_list_page_size_is_capped_at_100(api, user, access):
    add_rows(user, 105)

    body = listing(api, access, "?page_size=1000").json()

    assert body["count"] == 105
    assert len(body["results"]) == 100
    assert body["next"] is not None


@pytest.mark.parametrize("query", ["?page=2", "?page=0", "?page=-1", "?page=abc", "?page=99999999999999999999"])
def test_list_invalid_page_is_404_in_the_error_shape(api, user, access, query):
    add_rows(user, 2)

    assert_error(listing(api, access, query), 404, "not_found")


def test_list_of_a_user_without_documents_is_empty(api, access):
    assert listing(api, access).json() == {"count": 0, "next": None, "previous": None, "results": []}


# ---------------------------------------------------------------------------
# Get and delete
# ---------------------------------------------------------------------------


def test_get_returns_the_document_with_its_content(api, user, access):
    document = stored(user, title="Herons", content="Herons stand still for hours.")

    response = fetch(api, access, document.id)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["id"] == str(document.id)
    assert body["title"] == "Herons"
    assert body["content"] == "Herons stand still for hours."
    assert body["size"] == document.size
    assert body["screening"] == {"status": "clean", "score": 0.0}
    assert "owner" not in body


def test_the_owner_deletes_their_own_document_with_documents_write(api, user, access):
    document = stored(user, title="Mine", content="Kingfishers nest in river banks.")
    assert ask(api, access, "kingfishers nest").json()["citations"]
    stored_before = User.objects.get(pk=user.pk)

    response, entry = audited(lambda: delete(api, access, document.id))

    assert response.status_code == 204
    assert not Document.objects.filter(pk=document.id).exists()
    assert not ask(api, access, "kingfishers nest").json()["citations"]
    assert entry.action == "documents.delete" and entry.outcome == "allowed"
    after = User.objects.get(pk=user.pk)
    assert (after.documents_stored, after.bytes_stored) == (stored_before.documents_stored - 1, stored_before.bytes_stored - document.size)


def test_delete_needs_documents_write(api, user):
    document = stored(user)
    read_only = obtain(api, "alice", scopes=["documents:read"])["access"]

    response = delete(api, read_only, document.id)

    assert_error(response, 403, "insufficient_scope")
    assert 'scope="documents:write"' in response["WWW-Authenticate"]
    assert Document.objects.filter(pk=document.id).exists()


def test_admin_deletes_any_users_document_and_its_chunks(api, bob, bob_access, admin_access):
    document = stored(bob, title="Bob's", content="Cormorants dry their wings in the wind.")
    assert ask(api, bob_access, "cormorants wings").json()["citations"]

    response, entry = audited(lambda: delete(api, admin_access, document.id))

    assert response.status_code == 204
    assert response.content == b""
    assert entry.action == "documents.delete"
    assert not Document.objects.filter(pk=document.id).exists()
    assert not Chunk.objects.filter(document_id=document.id).exists()
    assert_error(fetch(api, bob_access, document.id), 404, "not_found")
    # Deleted chunks leave the full-text index: the owner no longer retrieves them.
    assert ask(api, bob_access, "cormorants wings").json()["citations"] == []


def test_admin_delete_of_an_unknown_document_is_404(api, admin_access):
    assert_error(delete(api, admin_access, uuid.uuid4()), 404, "not_found")


def test_admin_delete_twice_is_404_the_second_time(api, user, admin_access):
    document = stored(user)

    assert delete(api, admin_access, document.id).status_code == 204
    assert_error(delete(api, admin_access, document.id), 404, "not_found")


# ---------------------------------------------------------------------------
# BOLA: another user's document does not exist for the caller, on every route
# ---------------------------------------------------------------------------


BOB_SECRET = "Bob's private marker zanzibar-quokka-7731 lives here."


@pytest.fixture
def bobs_document(bob) -> Document:
    return stored(bob, title="Bob private ledger", content=BOB_SECRET)


def test_get_of_another_users_document_is_404_like_an_unknown_one(api, access, bobs_document):
    foreign = fetch(api, access, bobs_document.id)
    unknown = fetch(api, access, uuid.uuid4())

    first = assert_error(foreign, 404, "not_found")
    second = assert_error(unknown, 404, "not_found")
    assert first["message"] == second["message"]
    assert b"zanzibar" not in foreign.content and b"Bob private" not in foreign.content


def test_list_never_contains_another_users_documents(api, user, access, bobs_document):
    own = stored(user, title="Alice's own")

    body = listing(api, access, "?page_size=100").json()

    assert body["count"] == 1
    assert [item["id"] for item in body["results"]] == [str(own.id)]
    assert str(bobs_document.id).encode() not in listing(api, access).content


def test_query_never_cites_another_users_text(api, access, bobs_document):
    response = ask(api, access, "zanzibar quokka private marker ledger")

    assert response.status_code == 200
    assert response.json()["citations"] == []
    assert b"zanzibar" not in response.content and str(bobs_document.id).encode() not in response.content


def test_delete_of_another_users_document_without_admin_is_indistinguishable_from_unknown(api, access, bobs_document):
    foreign = delete(api, access, bobs_document.id)
    unknown = delete(api, access, uuid.uuid4())

    assert_error(foreign, 404, "not_found")
    assert_error(unknown, 404, "not_found")
    assert foreign.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert Document.objects.filter(pk=bobs_document.id).exists()


def test_owner_still_sees_their_document(api, bob_access, bobs_document):
    response = fetch(api, bob_access, bobs_document.id)

    assert response.status_code == 200
    assert response.json()["content"] == BOB_SECRET


@pytest.mark.parametrize("method", ["get", "delete", "put", "patch"])
@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "..", "00000000-0000-0000-0000-00000000000g", "%00", "'%20OR%201=1--"])
def test_malformed_document_id_is_json_404(api, access, method, bad_id):
    response = getattr(api, method)(f"{DOCUMENTS_URL}{bad_id}/", **bearer(access))

    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["put", "patch"])
def test_documents_cannot_be_edited(api, user, access, method):
    document = stored(user)

    response = getattr(api, method)(document_url(document.id), {"title": "changed"}, format="json", **bearer(access))

    assert_error(response, 405, "method_not_allowed")
    assert Document.objects.get(pk=document.id).title == "notes"


# ---------------------------------------------------------------------------
# Scopes and authentication
# ---------------------------------------------------------------------------


def test_create_needs_documents_write(api, user):
    read_only = obtain(api, "alice", scopes=["documents:read", "query:read"])["access"]

    response = create(api, read_only, {"title": "t", "content": "text"})

    assert_error(response, 403, "insufficient_scope")
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert 'scope="documents:write"' in response["WWW-Authenticate"]
    assert Document.objects.count() == 0


def test_upload_needs_documents_write(api, user):
    read_only = obtain(api, "alice", scopes=["documents:read"])["access"]

    response = upload(api, read_only, "notes.txt", b"text")

    assert_error(response, 403, "insufficient_scope")
    assert Document.objects.count() == 0


@pytest.mark.parametrize("asked", [["documents:write"], ["query:read"]])
def test_list_and_get_need_documents_read(api, user, asked):
    document = stored(user)
    token = obtain(api, "alice", scopes=asked)["access"]

    for response in (listing(api, token), fetch(api, token, document.id)):
        assert_error(response, 403, "insufficient_scope")
        assert 'scope="documents:read"' in response["WWW-Authenticate"]


def test_write_only_token_can_create(api, user):
    write_only = obtain(api, "alice", scopes=["documents:write"])["access"]

    assert create(api, write_only, {"title": "t", "content": "text"}).status_code == 201


def test_revoked_grant_bites_on_the_next_request(api, user, access):
    assert create(api, access, {"title": "t", "content": "text"}).status_code == 201

    user.scopes.remove(*user.scopes.filter(name="documents:write"))

    assert_error(create(api, access, {"title": "t", "content": "text"}), 403, "insufficient_scope")


@pytest.mark.parametrize(
    "send",
    [
        lambda api: api.get(DOCUMENTS_URL),
        lambda api: api.post(DOCUMENTS_URL, {"title": "t", "content": "c"}, format="json"),
        lambda api: api.get(document_url(uuid.uuid4())),
        lambda api: api.delete(document_url(uuid.uuid4())),
    ],
    ids=["list", "create", "get", "delete"],
)
def test_every_route_needs_authentication(api, send):
    response = send(api)

    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_user_without_a_tier_cannot_store_anything(api, user, access):
    # No tier means every limit is 0, and a limit of 0 denies: the request allowance is the first to refuse.
    user.tier = None
    user.save()

    response = create(api, access, {"title": "t", "content": "x"})

    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0
    assert Document.objects.count() == 0


# ---------------------------------------------------------------------------
# Audit: one entry per request, whatever the outcome
# ---------------------------------------------------------------------------


def test_every_document_request_writes_exactly_one_audit_entry(api, user, access, admin_access, bobs_document):
    document = stored(user)
    sends = [
        (lambda: listing(api, access), 200, "documents.list"),
        (lambda: fetch(api, access, document.id), 200, "documents.get"),
        (lambda: fetch(api, access, bobs_document.id), 404, "documents.get"),
        (lambda: create(api, access, {"title": "", "content": "x"}), 400, "documents.create"),
        (lambda: delete(api, access, bobs_document.id), 404, "documents.delete"),
        (lambda: delete(api, admin_access, document.id), 204, "documents.delete"),
    ]
    for send, status, action in sends:
        response, entry = audited(send)
        assert response.status_code == status, (status, response.content)
        if action:
            assert entry.action == action, (entry.action, status)


# ---------------------------------------------------------------------------
# Ingestion bounds: passages per document, storage per user, uploads in progress
# ---------------------------------------------------------------------------


@pytest.fixture
def capped_tier(tiers) -> Tier:
    return Tier.objects.create(
        name="capped", requests_per_minute=1000, llm_tokens_per_day=10_000, max_top_k=5, max_document_bytes=1_000_000,
        retrieved_bytes_per_hour=1_000_000, max_documents=2, max_stored_bytes=100,
    )


def test_a_pathological_upload_is_refused_with_413_and_nothing_stored(api, make_user):
    make_user("pat", tier="pro")
    access = obtain(api, "pat")["access"]

    response = create(api, access, {"title": "x", "content": ".-" * 499_500})

    assert_error(response, 413, "payload_too_large")
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert User.objects.get(username="pat").documents_stored == 0


def test_storage_caps_count_documents_and_bytes_and_deleting_makes_room(api, make_user, capped_tier):
    user = make_user("cap")
    User.objects.filter(pk=user.pk).update(tier=capped_tier)
    access = obtain(api, "cap")["access"]

    first = create(api, access, {"title": "one", "content": "a" * 40})
    second = create(api, access, {"title": "two", "content": "b" * 40})
    third = create(api, access, {"title": "three", "content": "c"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert_error(third, 413, "payload_too_large")

    assert delete(api, access, first.json()["id"]).status_code == 204
    too_big = create(api, access, {"title": "big", "content": "d" * 61})
    assert_error(too_big, 413, "payload_too_large")
    fits = create(api, access, {"title": "fits", "content": "d" * 60})
    assert fits.status_code == 201
    me = api.get("/api/v1/auth/me/", **bearer(access)).json()
    assert (me["usage"]["documents_stored"], me["usage"]["bytes_stored"]) == (2, 100)
    assert (me["tier"]["max_documents"], me["tier"]["max_stored_bytes"]) == (2, 100)


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_never_pass_the_storage_cap(make_user, capped_tier):
    """Eight uploads at once for a cap of two documents: exactly two stored (the check and the count are one UPDATE)."""
    import threading

    from django.db import connection

    from ragsecure.errors import PayloadTooLarge, RateLimited

    user = make_user("race")
    User.objects.filter(pk=user.pk).update(tier=capped_tier)
    user.refresh_from_db()
    barrier = threading.Barrier(8)
    outcomes = []

    def upload(number: int) -> None:
        barrier.wait()
        try:
            document_create(owner=user, title=f"n{number}", content="x" * 10)
            outcomes.append("stored")
        except (PayloadTooLarge, RateLimited) as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Document.objects.filter(owner=user).count() == outcomes.count("stored") <= 2
    assert User.objects.get(pk=user.pk).documents_stored == outcomes.count("stored")


def test_uploads_past_the_users_concurrent_slots_are_refused_with_429(api, user, access, settings):
    from accounts.concurrency import concurrency_slot

    settings.RAGSECURE = {**settings.RAGSECURE, "CONCURRENT_UPLOADS_PER_USER": 1}
    with concurrency_slot(user_id=user.pk, kind="uploads", limit=1, lease_seconds=30):
        response = create(api, access, {"title": "busy", "content": "Waiting for the other upload."})
    error = assert_error(response, 429, "rate_limited")
    assert response["Retry-After"] == "1" and "in progress" in error["message"]
    assert create(api, access, {"title": "free", "content": "Now it goes through."}).status_code == 201
