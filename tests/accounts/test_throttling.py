"""Rate limits over the API: tier limits and RateLimit headers, per-IP limits on anonymous endpoints, budgets, Redis down."""

import io
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from accounts.budgets import budget_used
from accounts.models import Tier, User
from accounts.ratelimit import local_limiter, rate_limit_count, user_rate_key
from accounts.services import access_token_revoke, user_tier_change, user_tokens_revoke
from accounts.tokens import AccessToken
from audit.models import AuditEntry
from audit.services import audit_floods_write
from documents.answering.base import get_answerer
from documents.answering.prompts import build_messages
from documents.retrieval import get_retriever
from documents.services import document_create, query_answer
from documents.text import token_count
from ragsecure.conf import ragsecure_settings
from ragsecure.errors import BudgetExceeded
from ragsecure.redis_gate import redis_gate
from ragsecure.secrets import secrets_provider
from ragsecure.settings.base import cache_settings
from tests.accounts.test_ratelimit import patient_cache_settings
from tests.conftest import PASSWORD, assert_error, bearer, obtain
from tests.documents import fake_llm as fake
from tests.services import start_redis_server
from tests.threads import run_threads

pytestmark = [pytest.mark.redis, pytest.mark.database]

fake_llm = fake.fake_llm  # the local OpenAI-compatible server fixture, used by name

ME_URL = "/api/v1/auth/me/"
DOCUMENTS_URL = "/api/v1/documents/"
QUERY_URL = "/api/v1/query/"
TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
FREE_RPM = 10


def me(api, access: str, **extra):
    return api.get(ME_URL, **bearer(access), **extra)


def ask(api, access: str, query: str = "What is the vault combination?", top_k: int = 1):
    return api.post(QUERY_URL, {"query": query, "top_k": top_k}, format="json", **bearer(access))


def list_documents(api, access: str):
    return api.get(DOCUMENTS_URL, **bearer(access))


ENDPOINTS = {"me": me, "documents": list_documents, "query": ask}


def rate_headers(response) -> tuple[int, int, int]:
    """(RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset), asserting each is a non-negative integer."""
    values = []
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert name in response, (name, response.status_code, dict(response.items()))
        assert response[name].isdigit(), (name, response[name])
        values.append(int(response[name]))
    return tuple(values)


def retry_after(response) -> int:
    value = response["Retry-After"]
    assert value.isdigit() and int(value) >= 1, value
    return int(value)


def audit_entry(response) -> AuditEntry:
    return AuditEntry.objects.get(request_id=response["X-Request-ID"])


def requests_logged(user: User) -> int:
    return rate_limit_count(user_rate_key(user.pk))


def set_anonymous_rates(settings, **rates) -> None:
    settings.RAGSECURE = {**settings.RAGSECURE, "ANONYMOUS_RATES": {"auth": 100_000, "public": 100_000, **rates}}


@pytest.fixture(autouse=True)
def patient_redis(settings):
    """Counting must not depend on a loaded test machine answering within the product's 50 ms socket timeout."""
    settings.CACHES = patient_cache_settings(settings.REDIS_URL)
    redis_gate.reset()


@pytest.fixture
def access(tokens) -> str:
    return tokens["access"]


# ---------------------------------------------------------------------------
# RateLimit headers on every response of a limited endpoint
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_every_response_carries_the_tier_limit_counting_down(api, access, endpoint):
    responses = [ENDPOINTS[endpoint](api, access) for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    headers = [rate_headers(response) for response in responses]
    assert [limit for limit, _, _ in headers] == [FREE_RPM] * 3
    assert [remaining for _, remaining, _ in headers] == [FREE_RPM - 1, FREE_RPM - 2, FREE_RPM - 3]
    assert all(0 <= reset <= 60 for _, _, reset in headers)


def test_headers_on_a_403_of_an_authenticated_request(api, user):
    narrow = obtain(api, "alice", scopes=["query:read"])["access"]

    first = list_documents(api, narrow)
    second = api.post(DOCUMENTS_URL, {"title": "t", "content": "c"}, format="json", **bearer(narrow))

    assert_error(first, 403, "insufficient_scope")
    assert_error(second, 403, "insufficient_scope")
    assert rate_headers(first)[:2] == (FREE_RPM, FREE_RPM - 1)
    assert rate_headers(second)[:2] == (FREE_RPM, FREE_RPM - 2)


def test_headers_on_a_404_of_an_authenticated_request(api, access):
    response = api.get(f"{DOCUMENTS_URL}{uuid.uuid4()}/", **bearer(access))

    assert_error(response, 404, "not_found")
    assert rate_headers(response)[:2] == (FREE_RPM, FREE_RPM - 1)


def test_headers_on_a_400_of_an_authenticated_request(api, access):
    response = api.post(QUERY_URL, {"query": "hello", "top_k": 0}, format="json", **bearer(access))

    assert_error(response, 400, "validation_error")
    assert rate_headers(response)[:2] == (FREE_RPM, FREE_RPM - 1)


def test_limited_endpoints_share_one_per_minute_allowance(api, access):
    me(api, access)
    list_documents(api, access)
    response = ask(api, access)

    assert response.status_code == 200
    assert rate_headers(response)[:2] == (FREE_RPM, FREE_RPM - 3)


# ---------------------------------------------------------------------------
# Over the limit
# ---------------------------------------------------------------------------


def test_request_over_the_tier_limit_is_429_with_retry_after(api, access):
    allowed = [me(api, access) for _ in range(FREE_RPM)]

    over = me(api, access)

    assert [response.status_code for response in allowed] == [200] * FREE_RPM
    assert rate_headers(allowed[-1])[1] == 0
    assert_error(over, 429, "rate_limited")
    assert 1 <= retry_after(over) <= 60
    assert rate_headers(over)[:2] == (FREE_RPM, 0)
    assert_error(list_documents(api, access), 429, "rate_limited")
    assert_error(ask(api, access), 429, "rate_limited")


def test_throttled_request_is_audited_as_throttled_with_the_verdict(api, user, access):
    allowed = [me(api, access) for _ in range(FREE_RPM)]

    over = me(api, access)

    entry = audit_entry(over)
    assert entry.status == 429 and entry.outcome == "throttled"
    assert entry.actor_id == user.pk
    verdict = entry.detail["rate_limit"]
    assert verdict["allowed"] is False
    assert verdict["limit"] == FREE_RPM and verdict["remaining"] == 0
    allowed_entry = audit_entry(allowed[-1])
    assert allowed_entry.outcome == "allowed"
    assert allowed_entry.detail["rate_limit"]["allowed"] is True and allowed_entry.detail["rate_limit"]["remaining"] == 0


def test_other_users_are_not_affected(api, make_user, access):
    make_user("bob")
    bob = obtain(api, "bob")["access"]
    for _ in range(FREE_RPM):
        me(api, access)
    assert_error(me(api, access), 429, "rate_limited")

    response = me(api, bob)

    assert response.status_code == 200
    assert rate_headers(response)[:2] == (FREE_RPM, FREE_RPM - 1)


def test_tokens_of_one_user_share_the_allowance(api, user, access):
    second = obtain(api, "alice")["access"]
    for _ in range(FREE_RPM // 2):
        me(api, access)
        me(api, second)

    assert_error(me(api, access), 429, "rate_limited")
    assert_error(me(api, second), 429, "rate_limited")


# ---------------------------------------------------------------------------
# Revoked tokens are not counted
# ---------------------------------------------------------------------------


def test_requests_with_a_revoked_access_token_are_not_counted(api, user, access):
    me(api, access)
    access_token_revoke(token=AccessToken(access), actor=None, reason="stolen")
    before = requests_logged(user)

    for _ in range(FREE_RPM + 5):
        assert_error(me(api, access), 401, "token_revoked")

    assert requests_logged(user) == before == 1
    fresh = obtain(api, "alice")["access"]
    assert rate_headers(me(api, fresh))[1] == FREE_RPM - 2


def test_requests_with_a_logged_out_token_are_not_counted(api, user, tokens):
    response = api.post("/api/v1/auth/token/revoke/", {"refresh": tokens["refresh"]}, format="json", **bearer(tokens["access"]))
    assert response.status_code == 204
    before = requests_logged(user)

    for _ in range(FREE_RPM + 5):
        assert_error(me(api, tokens["access"]), 401, "token_revoked")

    assert requests_logged(user) == before


def test_requests_with_tokens_revoked_by_revoke_all_are_not_counted(api, user, access):
    """A stolen token the user has revoked must not be able to burn the user's allowance."""
    me(api, access)
    user_tokens_revoke(user=user, actor=None, reason="compromised")
    before = requests_logged(user)

    for _ in range(FREE_RPM + 5):
        assert_error(me(api, access), 401, "token_revoked")

    assert requests_logged(user) == before
    fresh = obtain(api, "alice")["access"]
    response = me(api, fresh)
    assert response.status_code == 200, "the revoked token's requests used up the user's allowance"


def test_requests_with_tokens_revoked_by_a_password_change_are_not_counted(api, user, access):
    me(api, access)
    user.set_password("a-brand-new-password-91")
    user.save()
    before = requests_logged(user)

    for _ in range(FREE_RPM + 5):
        assert_error(me(api, access), 401, "token_revoked")

    assert requests_logged(user) == before
    fresh = obtain(api, "alice", password="a-brand-new-password-91")["access"]
    assert me(api, fresh).status_code == 200


# ---------------------------------------------------------------------------
# Tier changes apply on the next request
# ---------------------------------------------------------------------------


def test_tier_change_service_applies_on_the_next_request(api, user, tiers, access):
    for _ in range(3):
        me(api, access)

    user_tier_change(users=[user], tier=tiers["pro"], actor=None, reason="upgraded")

    response = me(api, access)
    assert response.json()["tier"]["name"] == "pro"
    assert rate_headers(response)[:2] == (100, 100 - 4)


def test_downgrade_below_what_was_used_denies_the_next_request(api, user, tiers):
    user.tier = tiers["pro"]
    user.save()
    access = obtain(api, "alice")["access"]
    for _ in range(FREE_RPM):
        assert me(api, access).status_code == 200

    user_tier_change(users=[user], tier=tiers["free"], actor=None, reason="downgraded")

    response = me(api, access)
    assert_error(response, 429, "rate_limited")
    assert rate_headers(response)[:2] == (FREE_RPM, 0)


def test_tier_row_edit_applies_on_the_next_request(api, tiers, access):
    assert rate_headers(me(api, access))[:2] == (FREE_RPM, FREE_RPM - 1)

    free = Tier.objects.get(name="free")
    free.requests_per_minute = 3
    free.save()

    second = me(api, access)
    assert rate_headers(second)[:2] == (3, 1)
    assert second.json()["tier"]["requests_per_minute"] == 3
    assert me(api, access).status_code == 200
    assert_error(me(api, access), 429, "rate_limited")

    free.requests_per_minute = 50
    free.save()
    assert rate_headers(me(api, access))[:2] == (50, 46)


def test_tier_with_zero_requests_per_minute_denies_every_request(api, tiers, access):
    free = Tier.objects.get(name="free")
    free.requests_per_minute = 0
    free.save()

    responses = [me(api, access) for _ in range(3)] + [list_documents(api, access), ask(api, access)]

    for response in responses:
        assert_error(response, 429, "rate_limited")
        assert retry_after(response) >= 1
        assert rate_headers(response)[:2] == (0, 0)


def test_user_without_a_tier_is_denied(api, user, access):
    user.tier = None
    user.save()

    for response in (me(api, access), list_documents(api, access), ask(api, access)):
        assert_error(response, 429, "rate_limited")
        assert retry_after(response) >= 1


# ---------------------------------------------------------------------------
# Anonymous endpoints: per client IP
# ---------------------------------------------------------------------------


def sign_in(api, ip: str, **extra):
    return api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json", REMOTE_ADDR=ip, **extra)


def test_token_endpoint_is_limited_per_client_ip(api, user, settings):
    set_anonymous_rates(settings, auth=3)
    settings.RAGSECURE = {**settings.RAGSECURE, "TRUSTED_PROXIES": 0}

    allowed = [sign_in(api, "203.0.113.5") for _ in range(3)]
    over = sign_in(api, "203.0.113.5")

    assert [response.status_code for response in allowed] == [200, 200, 200]
    assert [rate_headers(response)[:2] for response in allowed] == [(3, 2), (3, 1), (3, 0)]
    assert_error(over, 429, "rate_limited")
    assert 1 <= retry_after(over) <= 60
    assert b"access" not in over.content
    # Another client IP has its own allowance.
    assert sign_in(api, "198.51.100.7").status_code == 200
    # A forged X-Forwarded-For does not buy a new one while no proxy is trusted.
    for forged in ("198.51.100.99", "10.9.8.7, 198.51.100.100", "garbage"):
        assert_error(sign_in(api, "203.0.113.5", HTTP_X_FORWARDED_FOR=forged), 429, "rate_limited")


def test_refresh_shares_the_auth_allowance_of_the_ip(api, user, settings):
    pair = sign_in(api, "203.0.113.60").json()
    set_anonymous_rates(settings, auth=2)

    assert sign_in(api, "203.0.113.6").status_code == 200
    assert sign_in(api, "203.0.113.6").status_code == 200
    refused = api.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json", REMOTE_ADDR="203.0.113.6")

    assert_error(refused, 429, "rate_limited")
    assert api.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json", REMOTE_ADDR="203.0.113.7").status_code == 200


def test_ip_throttled_sign_in_is_audited(api, user, settings):
    set_anonymous_rates(settings, auth=1)
    allowed = sign_in(api, "203.0.113.8")
    entry = audit_entry(allowed)
    assert entry.detail["rate_limit"] == {"scope": "ip:auth", "allowed": True, "limit": 1, "remaining": 0}

    rejected = [sign_in(api, "203.0.113.8") for _ in range(4)]

    assert {response.status_code for response in rejected} == {429}
    # An anonymous flood keeps the first rejection of the minute in full, not the rest request by request...
    first = audit_entry(rejected[0])
    assert first.detail["flood"] == {"kind": "429:ip:auth", "first_of_minute": True}
    assert not AuditEntry.objects.filter(request_id__in=[response["X-Request-ID"] for response in rejected[1:]]).exists()
    # ...and counts them all in one entry once the minute has ended.
    assert audit_floods_write(now=time.time() + 120) == 1
    summary = AuditEntry.objects.get(action="flood.summary", client_ip="203.0.113.8")
    assert summary.outcome == "throttled" and summary.status == 429
    assert summary.detail["requests"] == 4 and summary.detail["kind"] == "429:ip:auth"


def test_anonymous_limit_of_zero_denies(api, user, settings):
    set_anonymous_rates(settings, auth=0)

    assert_error(sign_in(api, "203.0.113.9"), 429, "rate_limited")


def test_health_probes_are_never_throttled(api, settings):
    set_anonymous_rates(settings, auth=0, public=0)

    for _ in range(30):
        health = api.get("/healthz")
        assert health.status_code == 200
        assert "RateLimit-Limit" not in health
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"


# ---------------------------------------------------------------------------
# Budgets: LLM tokens reserved and settled, never overspent
# ---------------------------------------------------------------------------

VAULT_TEXT = "The vault combination is forty-two, seventeen, ninety-three. It is kept behind the painting in the study."
VAULT_QUERY = "What is the vault combination?"


def reservation(user: User, query: str = VAULT_QUERY, top_k: int = 1) -> int:
    """What query_answer reserves for one query before answering: the answerer's bound on its cost."""
    chunks = get_retriever().search(owner_id=user.pk, query=query, top_k=top_k)
    return get_answerer().cost_bound(query=query, chunks=chunks)


def answer_cost(user: User, query: str = VAULT_QUERY, top_k: int = 1) -> int:
    """What one answer to the query actually costs (prompt + completion tokens), asked of the answerer directly."""
    chunks = get_retriever().search(owner_id=user.pk, query=query, top_k=top_k)
    answer = get_answerer().answer(query=query, chunks=chunks)
    return answer.prompt_tokens + answer.completion_tokens


def tokens_used(user: User) -> int:
    return budget_used(user_id=user.pk, kind="llm_tokens", window_seconds=86400)


def set_free_tier(**limits) -> Tier:
    free = Tier.objects.get(name="free")
    for name, value in limits.items():
        setattr(free, name, value)
    free.save()
    return free


def test_concurrent_queries_over_the_api_never_overspend_the_token_budget(api, user, access):
    document_create(owner=user, title="Vault", content=VAULT_TEXT)
    reserve, cost = reservation(user), answer_cost(user)
    assert cost < reserve
    # Room for one reservation on top of three answers: at most four queries of twelve can be answered.
    limit = reserve + 3 * cost
    set_free_tier(requests_per_minute=1000, llm_tokens_per_day=limit)
    threads = 12
    responses: list = [None] * threads
    start = threading.Barrier(threads)

    def worker(index: int) -> None:
        client = APIClient(HTTP_HOST="localhost")
        start.wait()
        responses[index] = ask(client, access)

    run_threads(worker, threads)

    spent = 0
    refused = [response for response in responses if response.status_code == 429]
    for response in responses:
        if response.status_code == 200:
            usage = response.json()["usage"]
            spent += usage["prompt_tokens"] + usage["completion_tokens"]
        else:
            assert_error(response, 429, "budget_exceeded")
            assert 1 <= retry_after(response) <= 86400
    assert len(refused) >= threads - 4
    assert spent <= limit
    assert tokens_used(user) == spent
    assert me(api, access).json()["usage"]["tokens_remaining_today"] == limit - spent


def test_concurrent_direct_queries_never_overspend_the_token_budget(user, tiers):
    document_create(owner=user, title="Vault", content=VAULT_TEXT)
    reserve, cost = reservation(user), answer_cost(user)
    limit = reserve + 5 * cost
    tier = set_free_tier(llm_tokens_per_day=limit)
    threads = 20
    outcomes: list = [None] * threads
    start = threading.Barrier(threads)

    def worker(index: int) -> None:
        start.wait()
        try:
            answer = query_answer(user_id=user.pk, tier=tier, query=VAULT_QUERY, top_k=1)
            outcomes[index] = answer.prompt_tokens + answer.completion_tokens
        except BudgetExceeded as exc:
            outcomes[index] = exc

    run_threads(worker, threads)

    spent = sum(outcome for outcome in outcomes if isinstance(outcome, int))
    refusals = [outcome for outcome in outcomes if isinstance(outcome, BudgetExceeded)]
    assert len(refusals) >= threads - 6
    assert all(int(refusal.extra_headers["Retry-After"]) >= 1 for refusal in refusals)
    assert spent <= limit
    assert tokens_used(user) == spent


def test_a_query_never_settles_more_than_the_budget_allows(user, tiers, settings):
    """Whatever the answer costs, the day's settled usage stays within the tier's budget."""
    settings.RAGSECURE = {**settings.RAGSECURE, "LLM_MAX_COMPLETION_TOKENS": 0}  # 0: no max_tokens cap is sent
    document_create(owner=user, title="Vault", content=VAULT_TEXT)
    reserve = reservation(user)
    tier = set_free_tier(llm_tokens_per_day=reserve)

    outcomes = []
    for _ in range(3):
        try:
            answer = query_answer(user_id=user.pk, tier=tier, query=VAULT_QUERY, top_k=1)
            outcomes.append(answer.completion_tokens)
        except BudgetExceeded:
            outcomes.append(None)

    assert tokens_used(user) <= reserve, (tokens_used(user), reserve, outcomes)


@pytest.fixture
def openai_backend(settings, fake_llm, monkeypatch):
    """The OpenAI-compatible answerer pointed at the local fake server, with a key in the secrets provider."""
    monkeypatch.delenv("RAGSECURE_SECRET_LLM_API_KEY", raising=False)
    settings.RAGSECURE = {
        **settings.RAGSECURE,
        "LLM_BACKEND": "openai",
        "LLM_BASE_URL": fake_llm.base_url,
        "LLM_MODEL": "fake-model",
        "LLM_MAX_RETRIES": 0,
    }
    secrets_provider().put("llm-api-key", "sk-throttling-test-0123456789abcdef")
    yield fake_llm
    (Path(django_settings.RAGSECURE["SECRETS_DIR"]) / "llm-api-key").unlink(missing_ok=True)
    secrets_provider().invalidate("llm-api-key")


def test_a_model_answer_at_its_token_cap_stays_within_the_budget(user, tiers, openai_backend):
    """The model may use every completion token it is allowed, and its prompt includes the system prompt:
    the reservation must cover that, or the budget is overspent."""
    document_create(owner=user, title="Vault", content=VAULT_TEXT)
    chunks = get_retriever().search(owner_id=user.pk, query=VAULT_QUERY, top_k=1)
    # What the server would report: the prompt as sent (by the product's own count) and a completion at max_tokens.
    openai_backend.prompt_tokens = sum(token_count(message["content"]) for message in build_messages(VAULT_QUERY, chunks))
    openai_backend.completion_tokens = int(ragsecure_settings.LLM_MAX_COMPLETION_TOKENS)
    reserve = reservation(user)
    tier = set_free_tier(llm_tokens_per_day=reserve)

    try:
        query_answer(user_id=user.pk, tier=tier, query=VAULT_QUERY, top_k=1)
    except BudgetExceeded:
        pass

    assert openai_backend.requests[0].body["max_tokens"] == openai_backend.completion_tokens
    assert tokens_used(user) <= reserve, f"spent {tokens_used(user)} of a {reserve}-token day"


def test_query_over_the_token_budget_is_429_budget_exceeded(api, user, access):
    document_create(owner=user, title="Vault", content=VAULT_TEXT)
    reserve, cost = reservation(user), answer_cost(user)
    set_free_tier(llm_tokens_per_day=reserve + cost // 2)

    first = ask(api, access)
    second = ask(api, access)

    assert first.status_code == 200
    assert tokens_used(user) == cost
    error = assert_error(second, 429, "budget_exceeded")
    assert error
    assert 1 <= retry_after(second) <= 86400
    assert b"forty-two" not in second.content
    assert rate_headers(second)[:2] == (FREE_RPM, FREE_RPM - 2)
    entry = audit_entry(second)
    assert entry.outcome == "throttled" and entry.detail["llm_tokens"]["allowed"] is False
    assert tokens_used(user) == cost


def test_me_usage_reflects_requests_and_tokens_spent(api, user, access):
    document_create(owner=user, title="Vault", content=VAULT_TEXT)
    initial = me(api, access).json()["usage"]
    assert initial["requests_remaining"] == FREE_RPM - 1
    assert initial["tokens_remaining_today"] == 20_000

    answer = ask(api, access).json()
    usage = me(api, access).json()["usage"]

    spent = answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"]
    assert spent > 0
    assert usage["requests_remaining"] == FREE_RPM - 3
    assert usage["tokens_remaining_today"] == 20_000 - spent


# ---------------------------------------------------------------------------
# The admin's reset-limits action
# ---------------------------------------------------------------------------


@pytest.fixture
def operator(transactional_db) -> Client:
    call_command("bootstrap", stdout=io.StringIO())
    staff = User.objects.create_user(username="otto", password=PASSWORD, is_staff=True)
    staff.groups.add(Group.objects.get(name="security-operator"))
    client = Client(HTTP_HOST="localhost")
    client.force_login(staff)
    return client


def test_admin_reset_limits_restores_the_full_quota_on_the_next_request(api, user, access, operator):
    document_create(owner=user, title="Vault", content=VAULT_TEXT)
    assert ask(api, access).status_code == 200
    for _ in range(FREE_RPM - 1):
        me(api, access)
    assert_error(me(api, access), 429, "rate_limited")
    assert tokens_used(user) > 0

    response = operator.post(
        "/admin/accounts/user/", {"action": "reset_limits", "_selected_action": [user.pk], "apply": "1", "reason": "customer asked"}
    )

    assert response.status_code == 302
    after = me(api, access)
    assert after.status_code == 200
    assert rate_headers(after)[:2] == (FREE_RPM, FREE_RPM - 1)
    assert after.json()["usage"]["tokens_remaining_today"] == 20_000
    assert tokens_used(user) == 0


def test_admin_reset_limits_needs_a_reason(api, user, access, operator):
    for _ in range(FREE_RPM):
        me(api, access)

    response = operator.post("/admin/accounts/user/", {"action": "reset_limits", "_selected_action": [user.pk], "apply": "1", "reason": ""})

    assert response.status_code == 200 and b"errorlist" in response.content
    assert_error(me(api, access), 429, "rate_limited")


def test_admin_shows_current_usage(api, user, access, operator):
    for _ in range(3):
        me(api, access)

    page = operator.get(f"/admin/accounts/user/{user.pk}/change/")

    assert page.status_code == 200
    assert f"{FREE_RPM - 3} requests left this minute".encode() in page.content


# ---------------------------------------------------------------------------
# No key without a TTL
# ---------------------------------------------------------------------------


def test_every_key_written_by_a_session_expires(api, user, access):
    document_create(owner=user, title="Vault", content=VAULT_TEXT)
    me(api, access)
    ask(api, access)
    api.post(TOKEN_URL, {"username": "alice", "password": "wrong-password-000"}, format="json")
    obtain(api, "alice")

    redis = get_redis_connection("default")
    keys = list(redis.scan_iter(match="rs:*", count=1000))
    assert keys
    assert {key: redis.pttl(key) for key in keys if redis.pttl(key) < 0} == {}


# ---------------------------------------------------------------------------
# Redis stopped mid-test
# ---------------------------------------------------------------------------


@pytest.fixture
def stoppable_redis(settings):
    """A throwaway redis-server that the test stops; settings point at it meanwhile."""
    process, url = start_redis_server()
    settings.REDIS_URL = url
    settings.CACHES = cache_settings(url)
    redis_gate.reset()
    yield process
    if process.poll() is None:
        process.terminate()
    process.wait(timeout=10)
    redis_gate.reset()


def test_redis_stopped_mid_test_keeps_the_declared_policy(api, user, stoppable_redis):
    pair = obtain(api, "alice")
    access = pair["access"]
    for expected_remaining in (FREE_RPM - 1, FREE_RPM - 2):
        response = me(api, access)
        assert response.status_code == 200 and rate_headers(response)[1] == expected_remaining
    local_limiter.reset(user_rate_key(user.pk))

    stoppable_redis.terminate()
    stoppable_redis.wait(timeout=10)
    responses = []

    # Token endpoints fail closed.
    for response in (
        api.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json"),
        api.post(TOKEN_URL, {"username": "alice", "password": "wrong-password-000"}, format="json"),
        api.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json"),
    ):
        responses.append(response)
        assert_error(response, 503, "service_unavailable")
    # Other endpoints fall back to per-process limits at the same rate.
    admitted = []
    for _ in range(FREE_RPM):
        response = me(api, access)
        responses.append(response)
        assert response.status_code == 200, response.content
        admitted.append(rate_headers(response)[:2])
    over = me(api, access)
    responses.append(over)
    ready = api.get("/readyz")
    responses.append(ready)

    assert admitted == [(FREE_RPM, FREE_RPM - 1 - index) for index in range(FREE_RPM)]
    assert_error(over, 429, "rate_limited")
    assert retry_after(over) >= 1
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded" and ready.json()["checks"]["redis"] == "unavailable"
    assert not [response for response in responses if response.status_code >= 500 and response.status_code != 503]


def test_redis_stopped_other_endpoints_still_answer(api, user, tiers, stoppable_redis):
    set_free_tier(requests_per_minute=100)
    access = obtain(api, "alice")["access"]
    document_create(owner=user, title="Vault", content=VAULT_TEXT)
    local_limiter.reset(user_rate_key(user.pk))

    stoppable_redis.terminate()
    stoppable_redis.wait(timeout=10)

    responses = {
        "me": me(api, access),
        "list": list_documents(api, access),
        "get": api.get(f"{DOCUMENTS_URL}{uuid.uuid4()}/", **bearer(access)),
        "query": ask(api, access),
        "healthz": api.get("/healthz"),
    }
    assert {name: response.status_code for name, response in responses.items()} == {
        "me": 200,
        "list": 200,
        "get": 404,
        "query": 200,
        "healthz": 200,
    }
    for name in ("me", "list", "get", "query"):
        assert rate_headers(responses[name])[0] == 100
    assert "forty-two" in responses["query"].json()["answer"]

