"""POST /api/v1/query/: grounded answers from the caller's own documents, strict top_k, the exfiltration guard."""

import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from accounts.budgets import budget_used
from accounts.models import Tier
from audit.models import AuditEntry
from documents.models import Chunk, Document, ScreeningStatus
from documents.services import document_create
from ragsecure.secrets import secrets_provider
from tests.conftest import assert_error, bearer, obtain

pytestmark = [pytest.mark.redis, pytest.mark.database]

QUERY_URL = "/api/v1/query/"
ALICE_FACT = "The Falcon project launch code is amber-seven, kept in the north vault."
BOB_FACT = "The Falcon project launch code is crimson-nine, kept in the south vault."
BOB_MARKERS = (b"crimson", b"south vault", b"Bob ledger")


def ask(api, access: str, body, **extra):
    return api.post(QUERY_URL, body, format="json", **bearer(access), **extra)


def query_entry(response) -> AuditEntry:
    return AuditEntry.objects.get(request_id=response["X-Request-ID"])


@pytest.fixture
def facts(user, bob) -> tuple[Document, Document]:
    """Alice and Bob each hold a different answer to the same question."""
    mine = document_create(owner=user, title="Alice notes", content=f"Weather was fine today.\n\n{ALICE_FACT}")
    theirs = document_create(owner=bob, title="Bob ledger", content=f"Lunch was late again.\n\n{BOB_FACT}")
    return mine, theirs


def chunk_bytes(document: Document) -> int:
    return sum(len(text.encode()) for text in document.chunks.values_list("text", flat=True))


def set_free_tier(**limits) -> None:
    Tier.objects.filter(name="free").update(**limits)


# ---------------------------------------------------------------------------
# Grounded answers
# ---------------------------------------------------------------------------


def test_answer_is_grounded_in_the_callers_document_with_citations(api, access, facts):
    mine, _ = facts

    response = ask(api, access, {"query": "What is the Falcon project launch code?", "top_k": 3})

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"answer", "citations", "usage", "request_id"}
    assert "amber-seven" in body["answer"]
    assert body["citations"], body
    for citation in body["citations"]:
        assert set(citation) == {"document_id", "title", "snippet", "score"}
        assert isinstance(citation["score"], float | int)
    assert body["citations"][0]["document_id"] == str(mine.id)
    assert body["citations"][0]["title"] == "Alice notes"
    assert "amber-seven" in body["citations"][0]["snippet"]
    assert body["request_id"] == response["X-Request-ID"]
    usage = body["usage"]
    assert set(usage) == {"prompt_tokens", "completion_tokens"}
    assert all(isinstance(value, int) and not isinstance(value, bool) and value > 0 for value in usage.values())


def test_each_user_gets_their_own_fact_and_never_the_others(api, access, bob_access, facts):
    mine, theirs = facts
    question = {"query": "What is the Falcon project launch code?", "top_k": 5}

    alice = ask(api, access, question)
    bob = ask(api, bob_access, question)

    assert "amber-seven" in alice.json()["answer"]
    assert "crimson-nine" in bob.json()["answer"]
    for marker in BOB_MARKERS:
        assert marker not in alice.content
    assert str(theirs.id).encode() not in alice.content
    assert b"amber" not in bob.content and b"north vault" not in bob.content and b"Alice notes" not in bob.content
    assert str(mine.id).encode() not in bob.content


def test_query_matching_only_another_users_text_finds_nothing(api, access, facts):
    response = ask(api, access, {"query": "crimson nine south lunch late", "top_k": 5})

    assert response.status_code == 200
    body = response.json()
    assert body["citations"] == []
    assert "crimson" not in body["answer"]
    entry = query_entry(response)
    assert entry.detail["retrieval"]["documents"] == []


def test_audit_entry_records_the_returned_documents(api, user, access, facts):
    mine, theirs = facts
    other = document_create(owner=user, title="More", content="The Falcon project also has a backup launch plan.")

    response = ask(api, access, {"query": "Falcon project launch", "top_k": 5})

    assert response.status_code == 200
    entries = AuditEntry.objects.filter(request_id=response["X-Request-ID"])
    assert entries.count() == 1
    entry = entries.get()
    assert entry.action == "query"
    assert entry.actor_id == user.pk
    assert sorted(entry.detail["retrieval"]["documents"]) == sorted([str(mine.id), str(other.id)])
    assert str(theirs.id) not in str(entry.detail)


def test_no_matching_passage_gives_an_answer_without_citations(api, access, facts):
    response = ask(api, access, {"query": "xylophone quasar", "top_k": 1})

    assert response.status_code == 200
    body = response.json()
    assert body["citations"] == []
    assert body["answer"]


def test_quarantined_document_is_never_retrieved(api, user, access):
    quarantined = document_create(owner=user, title="Poisoned", content="The heliotrope cipher is wolfram-three.")
    Document.objects.filter(pk=quarantined.pk).update(screening_status=ScreeningStatus.QUARANTINED)
    Chunk.objects.filter(document=quarantined).update(retrievable=False)
    clean = document_create(owner=user, title="Clean", content="Heliotrope grows in the garden.")

    response = ask(api, access, {"query": "heliotrope cipher wolfram", "top_k": 5})

    assert response.status_code == 200
    body = response.json()
    assert [citation["document_id"] for citation in body["citations"]] == [str(clean.id)]
    assert b"wolfram" not in response.content and str(quarantined.id).encode() not in response.content
    assert query_entry(response).detail["retrieval"]["documents"] == [str(clean.id)]


# ---------------------------------------------------------------------------
# top_k
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("top_k", [0, -1, 10**9, "5", 5.5, 5.0, True, False, None, [5], {"n": 5}, "", "five"])
def test_bad_top_k_is_a_validation_error(api, access, facts, top_k):
    response = ask(api, access, {"query": "Falcon launch code", "top_k": top_k})

    error = assert_error(response, 400, "validation_error")
    assert "top_k" in error["fields"]


def test_top_k_above_the_tier_maximum_is_refused(api, access, facts):
    response = ask(api, access, {"query": "Falcon launch code", "top_k": 6})

    error = assert_error(response, 400, "validation_error")
    assert "top_k" in error["fields"]


def test_top_k_at_the_tier_maximum_is_accepted(api, access, facts):
    assert ask(api, access, {"query": "Falcon launch code", "top_k": 5}).status_code == 200


def test_top_k_maximum_follows_the_tier_row(api, access, facts):
    set_free_tier(max_top_k=20)

    assert ask(api, access, {"query": "Falcon launch code", "top_k": 20}).status_code == 200
    assert_error(ask(api, access, {"query": "Falcon launch code", "top_k": 21}), 400, "validation_error")


@pytest.fixture
def otters(user) -> list[Document]:
    return [
        document_create(owner=user, title=f"otter {number}", content=f"Otter number {number} swims in the river.") for number in range(8)
    ]


def test_top_k_bounds_the_retrieved_chunks(api, access, otters):
    response = ask(api, access, {"query": "otter swims river", "top_k": 2})

    assert response.status_code == 200
    assert len(query_entry(response).detail["retrieval"]["chunks"]) == 2


def test_top_k_defaults_to_five_when_omitted(api, access, otters):
    response = ask(api, access, {"query": "otter swims river"})

    assert response.status_code == 200, response.content
    assert len(query_entry(response).detail["retrieval"]["chunks"]) == 5


def test_default_top_k_fits_a_tier_whose_maximum_is_below_it(api, access, otters):
    # A client that sends no top_k never chose a value; it must not be told its value is too large.
    set_free_tier(max_top_k=3)

    response = ask(api, access, {"query": "otter swims river"})

    assert response.status_code == 200, response.content
    assert len(query_entry(response).detail["retrieval"]["chunks"]) <= 3


# ---------------------------------------------------------------------------
# Query text
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"query": "", "top_k": 3},
        {"query": "   \t\n ", "top_k": 3},
        {"top_k": 3},
        {},
        {"query": None, "top_k": 3},
        {"query": ["Falcon"], "top_k": 3},
        {"query": {"text": "Falcon"}, "top_k": 3},
        {"query": "x" * 2001, "top_k": 3},
        {"query": "Falcon \x00 launch", "top_k": 3},
    ],
    ids=["empty", "blank", "missing", "empty-object", "null", "list", "object", "2001-chars", "nul"],
)
def test_bad_query_is_a_validation_error(api, access, facts, body):
    response = ask(api, access, body)

    error = assert_error(response, 400, "validation_error")
    assert "query" in error["fields"]


@pytest.mark.parametrize("raw", ["[]", '"Falcon"', "42", "null"])
def test_query_body_that_is_not_an_object_is_refused(api, access, raw):
    response = api.post(QUERY_URL, raw, content_type="application/json", **bearer(access))

    assert_error(response, 400, "validation_error")


def test_query_of_2000_characters_is_accepted(api, access, facts):
    query = ("Falcon launch code " * 200)[:2000]

    response = ask(api, access, {"query": query, "top_k": 3})

    assert response.status_code == 200, response.content


HOSTILE_QUERIES = [
    '"',
    '"Falcon',
    'Falcon"',
    '"Falcon launch" "',
    "*",
    "Falc*",
    "NEAR(",
    "NEAR(Falcon launch",
    "NEAR(Falcon launch, 2)",
    "Falcon OR crimson",
    "OR",
    "AND NOT",
    "Falcon AND NOT amber",
    "^Falcon",
    "^",
    "-amber",
    "(",
    ")",
    "(Falcon",
    "Falcon)",
    "{Falcon}",
    "title:Falcon",
    "text:crimson",
    "content : Falcon",
    "Falcon:*",
    "Falcon & crimson | !amber",
    "<-> crimson",
    "'; DROP TABLE documents_chunk; --",
    "' OR 1=1 --",
    '" OR owner_id != 0 --',
    "Falcon') UNION SELECT text FROM documents_chunk --",
    "%",
    "_",
    "\\",
    '\\"',
    "+Falcon +launch",
    "Falcon~2",
    "launch code?",
    "🦅 Falcon 发射 код",
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_query_syntax_of_any_engine_is_plain_text(api, access, facts, query, settings):
    # The prompt screen may refuse some of these first; this test is about what the search engine does with them.
    settings.RAGSECURE = {**settings.RAGSECURE, "SCREEN_QUERY_BLOCK_SCORE": 1.01}
    mine, theirs = facts

    response = ask(api, access, {"query": query, "top_k": 5})

    assert response.status_code == 200, response.content
    body = response.json()
    assert "error" not in body
    for marker in BOB_MARKERS:
        assert marker not in response.content
    assert str(theirs.id).encode() not in response.content
    assert {citation["document_id"] for citation in body["citations"]} <= {str(mine.id)}


# ---------------------------------------------------------------------------
# Scopes
# ---------------------------------------------------------------------------


def test_query_needs_query_read(api, user, facts):
    token = obtain(api, "alice", scopes=["documents:read", "documents:write"])["access"]

    response = ask(api, token, {"query": "Falcon launch code", "top_k": 3})

    assert_error(response, 403, "insufficient_scope")
    assert 'scope="query:read"' in response["WWW-Authenticate"]
    assert b"amber" not in response.content


def test_query_read_alone_is_enough(api, user, facts):
    token = obtain(api, "alice", scopes=["query:read"])["access"]

    response = ask(api, token, {"query": "Falcon launch code", "top_k": 3})

    assert response.status_code == 200
    assert "amber-seven" in response.json()["answer"]


def test_query_needs_authentication(api, facts):
    assert_error(api.post(QUERY_URL, {"query": "Falcon", "top_k": 1}, format="json"), 401, "authentication_failed")


# ---------------------------------------------------------------------------
# Exfiltration guard: retrieved bytes per hour
# ---------------------------------------------------------------------------


def test_retrieved_bytes_budget_allows_then_refuses_with_retry_after(api, user, access):
    vault = document_create(owner=user, title="Vault", content="The vault combination is forty-two, seventeen, ninety-three.")
    size = chunk_bytes(vault)
    set_free_tier(retrieved_bytes_per_hour=2 * size + size // 2)
    question = {"query": "vault combination", "top_k": 1}

    first = ask(api, access, question)
    second = ask(api, access, question)
    third = ask(api, access, question)

    assert first.status_code == second.status_code == 200
    assert "forty-two" in second.json()["answer"]
    error = assert_error(third, 429, "budget_exceeded")
    assert error
    retry_after = third["Retry-After"]
    assert retry_after.isdigit() and 0 < int(retry_after) <= 3600
    assert b"forty-two" not in third.content
    assert budget_used(user_id=user.pk, kind="retrieved_bytes", window_seconds=3600) == 2 * size
    entry = query_entry(third)
    assert entry.status == 429 and entry.outcome == "throttled"
    assert entry.detail["retrieved_bytes"]["allowed"] is False
    assert "retrieval" not in entry.detail


def test_retrieved_bytes_budget_is_per_user(api, user, access, bob, bob_access):
    document_create(owner=user, title="Vault", content="The vault combination is forty-two.")
    document_create(owner=bob, title="Safe", content="The vault combination is elsewhere.")
    set_free_tier(retrieved_bytes_per_hour=60)

    assert ask(api, access, {"query": "vault combination", "top_k": 1}).status_code == 200
    assert_error(ask(api, access, {"query": "vault combination", "top_k": 1}), 429, "budget_exceeded")
    assert ask(api, bob_access, {"query": "vault combination", "top_k": 1}).status_code == 200


def test_zero_retrieved_bytes_budget_always_refuses(api, user, access):
    document_create(owner=user, title="Vault", content="The vault combination is forty-two.")
    set_free_tier(retrieved_bytes_per_hour=0)

    for query in ("vault combination", "nothing matches this zebra"):
        response = ask(api, access, {"query": query, "top_k": 1})
        assert_error(response, 429, "budget_exceeded")
        assert response["Retry-After"].isdigit() and int(response["Retry-After"]) > 0
        assert b"forty-two" not in response.content


def test_user_without_a_tier_is_denied(api, user, access, facts):
    # No tier means every limit is 0, and a limit of 0 denies: the request allowance is the first to refuse.
    user.tier = None
    user.save()

    for body in ({"query": "Falcon launch code", "top_k": 1}, {"query": "Falcon launch code"}):
        response = ask(api, access, body)
        assert_error(response, 429, "rate_limited")
        assert b"amber" not in response.content
    assert budget_used(user_id=user.pk, kind="retrieved_bytes", window_seconds=3600) == 0


# ---------------------------------------------------------------------------
# Answerer failure
# ---------------------------------------------------------------------------


@pytest.fixture
def dead_llm(settings, monkeypatch):
    """The OpenAI-compatible answerer pointed at a closed port, with a key in the secrets provider."""
    monkeypatch.delenv("RAGSECURE_SECRET_LLM_API_KEY", raising=False)
    settings.RAGSECURE = {
        **settings.RAGSECURE,
        "LLM_BACKEND": "openai",
        "LLM_BASE_URL": "http://127.0.0.1:1/v1",
        "LLM_MODEL": "test-model",
        "LLM_MAX_RETRIES": 0,
        "LLM_CONNECT_TIMEOUT_SECONDS": 0.5,
    }
    key = "sk-query-api-test-" + uuid.uuid4().hex
    secrets_provider().put("llm-api-key", key)
    yield key
    (Path(django_settings.RAGSECURE["SECRETS_DIR"]) / "llm-api-key").unlink(missing_ok=True)
    secrets_provider().invalidate("llm-api-key")


def test_unreachable_answerer_is_503_in_the_error_shape(api, access, facts, dead_llm):
    response = ask(api, access, {"query": "Falcon launch code", "top_k": 3})

    assert_error(response, 503, "service_unavailable")
    assert dead_llm.encode() not in response.content
    assert b"127.0.0.1" not in response.content and b"amber" not in response.content
    entry = query_entry(response)
    assert entry.status == 503
    assert dead_llm not in str(entry.detail)


# ---------------------------------------------------------------------------
# A misbehaving model
# ---------------------------------------------------------------------------


def test_a_model_claiming_ten_million_tokens_is_charged_no_more_than_reserved(api, user, access, facts, fake_llm, llm_settings, llm_key):
    fake_llm.completion_tokens = 10_000_000
    fake_llm.answer_text = "The Falcon answer [1]."

    response = ask(api, access, {"query": "Falcon launch code", "top_k": 3})

    assert response.status_code == 200, response.content
    usage = query_entry(response).detail["llm_tokens"]
    assert usage["claimed"] == {"prompt_tokens": 123, "completion_tokens": 10_000_000}
    assert usage["spent"] <= usage["reserved"]
    spent_today = budget_used(user_id=user.pk, kind="llm_tokens", window_seconds=86400)
    assert spent_today == usage["spent"] < user.tier.llm_tokens_per_day


def test_queries_past_the_users_slots_on_a_remote_model_answer_429(api, user, access, facts, fake_llm, llm_settings, llm_key):
    from accounts.concurrency import concurrency_slot

    with concurrency_slot(user_id=user.pk, kind="queries", limit=2, lease_seconds=30):
        with concurrency_slot(user_id=user.pk, kind="queries", limit=2, lease_seconds=30):
            response = ask(api, access, {"query": "Falcon launch code", "top_k": 3})
    assert_error(response, 429, "rate_limited")
    assert budget_used(user_id=user.pk, kind="llm_tokens", window_seconds=86400) == 0
    assert not fake_llm.requests
    assert ask(api, access, {"query": "Falcon launch code", "top_k": 3}).status_code == 200
