"""Probes and JWKS: liveness, readiness with Redis up, down or absent, the database down, and the public key set."""

import pytest
from django.db import OperationalError, connections
from django.test import Client

from accounts.keyring import key_ring
from ragsecure.redis_gate import redis_gate
from ragsecure.settings.base import cache_settings

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def web() -> Client:
    return Client(HTTP_HOST="localhost")


@pytest.fixture
def redis_down(settings):
    settings.REDIS_URL = DEAD_REDIS
    settings.CACHES = cache_settings(DEAD_REDIS)
    redis_gate.reset()


@pytest.fixture
def local_mode(settings):
    settings.REDIS_URL = ""
    settings.CACHES = cache_settings("")
    redis_gate.reset()


@pytest.fixture
def database_down(db):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("could not connect to server: secret-host-name")

    # Undone before the database fixture tears down (which needs a working cursor).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(connections["default"], "cursor", broken_cursor)
        yield


def test_healthz(web):
    response = web.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_answers_with_database_down(web, database_down):
    assert web.get("/healthz").status_code == 200


@pytest.mark.redis
def test_readyz_ok_with_redis(web, db):
    response = web.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_degraded_when_redis_configured_but_down(web, db, redis_down):
    response = web.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "checks": {"database": "ok", "redis": "unavailable"}}


def test_readyz_local_without_redis(web, db, local_mode):
    response = web.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "local"}}


def test_readyz_503_when_database_down(web, db, database_down):
    response = web.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"
    assert b"secret-host-name" not in response.content
    assert b"Traceback" not in response.content


def test_readyz_503_when_database_and_redis_down(web, db, database_down, redis_down):
    assert web.get("/readyz").status_code == 503


def test_readyz_tells_a_remote_anonymous_caller_only_the_status(db, redis_down):
    """Which backend is down is for the operators: from elsewhere, the status alone."""
    response = Client(HTTP_HOST="localhost", REMOTE_ADDR="203.0.113.9").get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "checks": {}}


def test_readyz_tells_a_remote_anonymous_caller_only_the_status_when_the_database_is_down(db, database_down):
    response = Client(HTTP_HOST="localhost", REMOTE_ADDR="203.0.113.9").get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {}}


def test_readyz_shows_staff_the_checks_from_anywhere(transactional_db, redis_down):
    from accounts.models import User

    staff = User.objects.create_user(username="sre", password="a-long-staff-password-42", is_staff=True)
    client = Client(HTTP_HOST="localhost", REMOTE_ADDR="203.0.113.9")
    client.force_login(staff)
    assert client.get("/readyz").json()["checks"] == {"database": "ok", "redis": "unavailable"}


def test_probes_are_not_cached(web, db):
    assert "no-store" in web.get("/readyz")["Cache-Control"]


def test_jwks_lists_public_keys_with_kid(web):
    response = web.get("/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys and all(key["kid"] for key in keys)
    assert keys[0]["kid"] == key_ring().active.kid
    assert all("d" not in key for key in keys)


def test_jwks_is_publicly_cacheable(web):
    cache_control = web.get("/.well-known/jwks.json")["Cache-Control"]
    assert "public" in cache_control
    assert "no-store" not in cache_control and "private" not in cache_control


def test_jwks_needs_no_authentication(web):
    response = web.get("/.well-known/jwks.json", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 200


def test_jwks_unavailable_without_key_ring(web, settings, tmp_path):
    settings.RAGSECURE = {**settings.RAGSECURE, "SECRETS_DIR": str(tmp_path / "empty")}
    response = web.get("/.well-known/jwks.json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
