"""The documents admin: every page renders for a superuser and a security viewer, nothing is editable, uploaded text is escaped."""

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from documents.admin import PREVIEW_CHARS
from documents.models import Chunk, Document, ScreeningStatus
from documents.services import document_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.database

DOCUMENTS = "/admin/documents/document/"
SCRIPT = "<script>alert('owned')</script>"


def browser(user: User) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def ok(client: Client, url: str, expect: str | None = None):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.get("Location"))
    if expect is not None:
        assert expect.encode() in response.content, url
    return response


def change_url(document: Document) -> str:
    return f"{DOCUMENTS}{document.pk}/change/"


@pytest.fixture
def roles(transactional_db):
    call_command("bootstrap", stdout=io.StringIO())


@pytest.fixture
def root(transactional_db) -> Client:
    return browser(User.objects.create_superuser(username="root", password=PASSWORD))


@pytest.fixture
def viewer(roles) -> Client:
    staff = User.objects.create_user(username="vera", password=PASSWORD, is_staff=True)
    staff.groups.add(Group.objects.get(name="security-viewer"))
    return browser(staff)


@pytest.fixture(params=["root", "viewer"])
def staff(request) -> Client:
    return request.getfixturevalue(request.param)


@pytest.fixture
def library(make_user) -> dict[str, Document]:
    alice, bob = make_user("alice"), make_user("bob")
    herons = document_create(owner=alice, title="Heron survey", content="Herons were counted along the river.")
    ledger = document_create(owner=bob, title="Quarterly ledger", content="Numbers, numbers and more numbers.")
    Document.objects.filter(pk=ledger.pk).update(screening_status=ScreeningStatus.QUARANTINED, screening_score=0.97)
    Chunk.objects.filter(document=ledger).update(retrievable=False)
    return {"herons": herons, "ledger": Document.objects.get(pk=ledger.pk)}


@pytest.fixture
def hostile(make_user) -> Document:
    content = f"{SCRIPT}\n" + "x" * (PREVIEW_CHARS + 500) + "TAIL-MARKER-BEYOND-THE-PREVIEW"
    return document_create(owner=make_user("mallory"), title=f"{SCRIPT} title", content=content)


# ---------------------------------------------------------------------------
# Smoke: changelist, search, filters, detail
# ---------------------------------------------------------------------------


def test_changelist_lists_documents_with_owner_and_status(staff, library):
    response = ok(staff, DOCUMENTS, "Heron survey")

    assert b"Quarterly ledger" in response.content
    assert b"alice" in response.content and b"bob" in response.content
    assert b"quarantined" in response.content


@pytest.mark.parametrize(
    ("term", "target", "decoy"),
    [("heron", "herons", "ledger"), ("bob", "ledger", "herons"), ("Quarterly", "ledger", "herons")],
)
def test_search_by_title_and_owner(staff, library, term, target, decoy):
    response = ok(staff, f"{DOCUMENTS}?q={term}")

    assert library[target].title.encode() in response.content
    assert library[decoy].title.encode() not in response.content


def test_search_by_id_and_content_hash(staff, library):
    herons = library["herons"]

    by_id = ok(staff, f"{DOCUMENTS}?q={herons.pk}", "Heron survey")
    by_hash = ok(staff, f"{DOCUMENTS}?q={herons.content_hash}", "Heron survey")

    assert b"Quarterly ledger" not in by_id.content
    assert b"Quarterly ledger" not in by_hash.content


def test_search_never_matches_content(staff, library):
    response = ok(staff, f"{DOCUMENTS}?q=river")

    assert b"Heron survey" not in response.content


@pytest.mark.parametrize(
    ("query", "target", "decoy"),
    [
        ("screening_status__exact=quarantined", "ledger", "herons"),
        ("screening_status__exact=clean", "herons", "ledger"),
    ],
)
def test_filter_by_screening_status(staff, library, query, target, decoy):
    response = ok(staff, f"{DOCUMENTS}?{query}")

    assert library[target].title.encode() in response.content
    assert library[decoy].title.encode() not in response.content


def test_date_filter_and_hierarchy(staff, library):
    created = library["herons"].created_at

    ok(staff, f"{DOCUMENTS}?created_at__year={created.year}", "Heron survey")
    ok(
        staff,
        f"{DOCUMENTS}?created_at__year={created.year}&created_at__month={created.month}&created_at__day={created.day}",
        "Heron survey",
    )
    empty = ok(staff, f"{DOCUMENTS}?created_at__year={created.year - 1}")
    assert b"Heron survey" not in empty.content


def test_detail_page_shows_metadata_and_preview(staff, library):
    herons = library["herons"]

    response = ok(staff, change_url(herons), "Herons were counted along the river.")

    assert herons.content_hash.encode() in response.content
    assert b"alice" in response.content
    assert b'name="_save"' not in response.content


def test_unknown_document_detail_is_not_a_server_error(staff, library):
    response = staff.get(f"{DOCUMENTS}00000000-0000-0000-0000-000000000000/change/")

    assert response.status_code in (302, 404)


# ---------------------------------------------------------------------------
# Read-only
# ---------------------------------------------------------------------------


def test_documents_cannot_be_added(staff, library):
    assert staff.get(f"{DOCUMENTS}add/").status_code == 403
    assert staff.post(f"{DOCUMENTS}add/", {"title": "new", "content": "x"}).status_code == 403
    assert Document.objects.count() == 2


def test_documents_cannot_be_changed(staff, library):
    herons = library["herons"]

    response = staff.post(change_url(herons), {"title": "edited", "content": "edited", "_save": "Save"})

    assert response.status_code == 403
    herons.refresh_from_db()
    assert herons.title == "Heron survey" and herons.content == "Herons were counted along the river."


def test_documents_cannot_be_deleted(staff, library):
    herons = library["herons"]

    assert staff.get(f"{DOCUMENTS}{herons.pk}/delete/").status_code == 403
    assert staff.post(f"{DOCUMENTS}{herons.pk}/delete/", {"post": "yes"}).status_code == 403
    response = staff.post(DOCUMENTS, {"action": "delete_selected", "_selected_action": [str(herons.pk)], "post": "yes"})
    assert response.status_code in (200, 302)
    assert Document.objects.filter(pk=herons.pk).exists()


def test_no_add_button_and_no_bulk_delete(staff, library):
    response = ok(staff, DOCUMENTS)

    assert f'href="{DOCUMENTS}add/"'.encode() not in response.content
    assert b"delete_selected" not in response.content


def test_staff_without_the_viewer_role_is_refused(transactional_db, library):
    stranger = browser(User.objects.create_user(username="stan", password=PASSWORD, is_staff=True))

    assert stranger.get(DOCUMENTS).status_code == 403
    assert stranger.get(change_url(library["herons"])).status_code == 403


def test_api_users_cannot_open_the_admin(library):
    alice = User.objects.get(username="alice")

    response = browser(alice).get(DOCUMENTS)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# ---------------------------------------------------------------------------
# Uploaded text is attacker-controlled
# ---------------------------------------------------------------------------


def test_changelist_escapes_the_title(staff, hostile):
    response = ok(staff, DOCUMENTS)

    assert SCRIPT.encode() not in response.content
    assert b"&lt;script&gt;" in response.content


def test_preview_is_escaped_and_truncated(staff, hostile):
    response = ok(staff, change_url(hostile))

    assert SCRIPT.encode() not in response.content
    assert b"&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in response.content
    assert b"x" * (PREVIEW_CHARS - len(SCRIPT) - 1) in response.content
    assert b"x" * (PREVIEW_CHARS + 1) not in response.content
    assert b"TAIL-MARKER-BEYOND-THE-PREVIEW" not in response.content
    assert "…".encode() in response.content


def test_short_preview_is_not_marked_as_truncated(staff, make_user):
    document = document_create(owner=make_user("alice"), title="Short", content="Only a few words.")

    response = ok(staff, change_url(document), "Only a few words.")

    assert "Only a few words.…".encode() not in response.content


def test_search_for_markup_is_escaped(staff, hostile):
    response = ok(staff, f"{DOCUMENTS}?q=%3Cscript%3E")

    assert SCRIPT.encode() not in response.content
    assert b"<script>alert" not in response.content
