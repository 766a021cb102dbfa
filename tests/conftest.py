"""Shared fixtures: default scopes and tiers, users, tokens, a clean Redis database, API clients."""

import shutil

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts import defaults
from accounts.keyring import key_ring_store, rotated_key_ring
from accounts.models import Scope, Tier, User
from audit import chain as audit_chain
from ragsecure.redis_gate import redis_configured, redis_gate
from ragsecure.secrets import secrets_provider

PASSWORD = "a-long-test-password-42"
ALL_API_SCOPES = ("query:read", "documents:read", "documents:write")


@pytest.fixture(scope="session", autouse=True)
def signing_keys(django_db_blocker):
    """A key ring for the session, in the test settings' private secrets directory."""
    directory = settings.RAGSECURE["SECRETS_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    key_ring_store(rotated_key_ring(None))
    secrets_provider().put("audit-hmac-key", "test-audit-hmac-key-0123456789abcdef0123456789")
    secrets_provider().put("api-key-hmac-key", "test-api-key-hmac-key-0123456789abcdef012345678")
    yield
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True)
def audited_requests(db):
    """Every request writes its audit entry, so every test may use the database (transactional_db wins where requested)."""


@pytest.fixture(autouse=True)
def clean_state():
    """Each test starts with an empty Redis database, a closed circuit breaker, fresh cached secrets and a new audit
    chain (the previous test's entries were rolled back with its transaction)."""
    audit_chain._writer = None
    redis_gate.reset()
    secrets_provider().invalidate()
    if redis_configured():
        from django_redis import get_redis_connection

        get_redis_connection("default").flushdb()
    yield
    redis_gate.reset()


@pytest.fixture
def scopes(transactional_db) -> dict[str, Scope]:
    return {name: Scope.objects.get_or_create(name=name, defaults={"description": text})[0] for name, text in defaults.SCOPES.items()}


@pytest.fixture
def tiers(transactional_db) -> dict[str, Tier]:
    return {name: Tier.objects.get_or_create(name=name, defaults=limits)[0] for name, limits in defaults.TIERS.items()}


@pytest.fixture
def make_user(scopes, tiers):
    """Create an API user: make_user("alice", scopes=["query:read"], tier="free")."""

    def make(username: str = "alice", *, scopes_granted=ALL_API_SCOPES, tier: str = "free", **extra) -> User:
        user = User.objects.create_user(username=username, password=PASSWORD, tier=tiers[tier], **extra)
        user.scopes.set([scopes[name] for name in scopes_granted])
        return user

    return make


@pytest.fixture
def user(make_user) -> User:
    return make_user("alice")


@pytest.fixture
def api() -> APIClient:
    return APIClient(HTTP_HOST="localhost")


def obtain(api: APIClient, username: str, password: str = PASSWORD, **extra) -> dict:
    response = api.post("/api/v1/auth/token/", {"username": username, "password": password, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def tokens(api, user) -> dict:
    """A token pair for `user` (all of their scopes)."""
    return obtain(api, user.username)


def bearer(access: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


def assert_error(response, status: int, code: str) -> dict:
    """Assert the one error shape with the given status and code; return the error object."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert error["request_id"] == response["X-Request-ID"]
    assert isinstance(error["message"], str) and error["message"]
    return error


requires_redis = pytest.mark.redis
