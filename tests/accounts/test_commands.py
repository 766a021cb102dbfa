"""Management commands: bootstrap, create_api_user, revoke_tokens and rotate_signing_key as an operator runs them."""

import io
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection

from accounts import defaults
from accounts.keyring import SECRET_NAME, key_ring
from accounts.models import Scope, Tier, User
from ragsecure.secrets import secrets_provider
from tests.conftest import PASSWORD, assert_error, bearer, obtain

pytestmark = pytest.mark.database

STRONG_PASSWORD = "correct-horse-battery-staple-19"
PROJECT_DIR = Path(settings.BASE_DIR)


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


@pytest.fixture
def restore_key_ring():
    """Put the session's key ring back after a test that rotates it."""
    original = secrets_provider().get(SECRET_NAME)
    yield
    secrets_provider().put(SECRET_NAME, original)


@pytest.fixture
def password_env(monkeypatch):
    monkeypatch.setenv("RAGSECURE_PASSWORD", STRONG_PASSWORD)


@pytest.fixture
def no_password_env(monkeypatch):
    monkeypatch.delenv("RAGSECURE_PASSWORD", raising=False)


# ---------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------


def counts() -> tuple[int, int, int]:
    return Tier.objects.count(), Scope.objects.count(), Group.objects.count()


def test_bootstrap_creates_defaults(transactional_db):
    run("bootstrap")
    assert set(Tier.objects.values_list("name", flat=True)) == set(defaults.TIERS)
    assert set(Scope.objects.values_list("name", flat=True)) == set(defaults.SCOPES)
    assert set(Group.objects.values_list("name", flat=True)) >= set(defaults.ROLES)
    assert Tier.objects.get(name="free").requests_per_minute == 10


def test_bootstrap_groups_have_role_permissions(transactional_db):
    run("bootstrap")
    for role, permissions in defaults.ROLES.items():
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=role).permissions.all()}
        assert granted == set(permissions)
    viewer = Group.objects.get(name="security-viewer").permissions.values_list("codename", flat=True)
    assert "revoke_tokens" not in viewer


def test_bootstrap_is_idempotent(transactional_db):
    run("bootstrap")
    before = counts()
    run("bootstrap")
    assert counts() == before


def test_bootstrap_preserves_tier_edits(transactional_db):
    run("bootstrap")
    Tier.objects.filter(name="free").update(requests_per_minute=77, max_top_k=2)
    run("bootstrap")
    free = Tier.objects.get(name="free")
    assert (free.requests_per_minute, free.max_top_k) == (77, 2)


def test_bootstrap_restores_role_permissions_removed_by_hand(transactional_db):
    run("bootstrap")
    Group.objects.get(name="security-operator").permissions.clear()
    run("bootstrap")
    assert Group.objects.get(name="security-operator").permissions.count() == len(defaults.OPERATOR_PERMISSIONS)


def test_bootstrap_superuser_created_once_and_password_shown_once(transactional_db):
    first = run("bootstrap")
    second = run("bootstrap")
    superusers = User.objects.filter(is_superuser=True)
    assert superusers.count() == 1
    admin = superusers.get()
    assert "shown once" in first and admin.username in first
    password = first.split("password (shown once):", 1)[1].split()[0]
    assert admin.check_password(password)
    assert password not in second and "password" not in second


def test_bootstrap_keeps_existing_key_ring(transactional_db):
    kid = key_ring().active.kid
    run("bootstrap")
    assert key_ring().active.kid == kid


def test_bootstrap_creates_audit_key_once(transactional_db):
    run("bootstrap")
    audit_key = secrets_provider().get("audit-hmac-key")
    secrets_provider().invalidate()
    run("bootstrap")
    assert secrets_provider().get("audit-hmac-key") == audit_key
    assert len(audit_key) >= 32


def test_bootstrap_skips_superuser_when_one_exists(transactional_db):
    User.objects.create_superuser(username="root", password=STRONG_PASSWORD)
    output = run("bootstrap")
    assert "password" not in output
    assert User.objects.filter(is_superuser=True).count() == 1


# ---------------------------------------------------------------------------
# create_api_user
# ---------------------------------------------------------------------------


def test_create_api_user_password_from_env(tiers, scopes, password_env, api):
    run("create_api_user", "bob", "--tier", "pro", "--scope", "query:read", "--scope", "documents:read")
    bob = User.objects.get(username="bob")
    assert bob.tier.name == "pro"
    assert sorted(bob.scopes.values_list("name", flat=True)) == ["documents:read", "query:read"]
    assert obtain(api, "bob", STRONG_PASSWORD)["scopes"] == ["documents:read", "query:read"]


def test_create_api_user_password_from_stdin(tiers, scopes, no_password_env, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(STRONG_PASSWORD + "\n"))
    run("create_api_user", "carol", "--tier", "free", "--scope", "query:read")
    assert User.objects.get(username="carol").check_password(STRONG_PASSWORD)


def test_create_api_user_hashes_with_argon2(tiers, scopes, password_env):
    output = run("create_api_user", "bob", "--tier", "free", "--scope", "query:read")
    bob = User.objects.get(username="bob")
    assert bob.password.startswith("argon2")
    assert STRONG_PASSWORD not in bob.password and STRONG_PASSWORD not in output


def test_create_api_user_is_not_staff(tiers, scopes, password_env):
    run("create_api_user", "bob", "--tier", "free", "--scope", "admin")
    bob = User.objects.get(username="bob")
    assert not bob.is_staff and not bob.is_superuser


def test_create_api_user_unknown_tier(tiers, scopes, password_env):
    with pytest.raises(CommandError, match="Unknown tier 'gold'"):
        run("create_api_user", "bob", "--tier", "gold", "--scope", "query:read")
    assert not User.objects.filter(username="bob").exists()


def test_create_api_user_unknown_scope(tiers, scopes, password_env):
    with pytest.raises(CommandError, match="Unknown scope.*superpowers"):
        run("create_api_user", "bob", "--tier", "free", "--scope", "query:read", "--scope", "superpowers")
    assert not User.objects.filter(username="bob").exists()


def test_create_api_user_existing_user_untouched(make_user, password_env, api):
    make_user("alice", tier="free")
    with pytest.raises(CommandError, match="already exists"):
        run("create_api_user", "alice", "--tier", "enterprise", "--scope", "admin")
    alice = User.objects.get(username="alice")
    assert alice.tier.name == "free"
    assert not alice.scopes.filter(name="admin").exists()
    assert alice.check_password(PASSWORD)


@pytest.mark.parametrize("weak", ["1qaz2wsx3edc", "98765432109876", "Tq9$z"], ids=["common", "numeric", "short"])
def test_create_api_user_weak_password_rejected(tiers, scopes, monkeypatch, weak):
    monkeypatch.setenv("RAGSECURE_PASSWORD", weak)
    with pytest.raises(CommandError, match="Password rejected") as raised:
        run("create_api_user", "bob", "--tier", "free", "--scope", "query:read")
    assert weak not in str(raised.value)
    assert not User.objects.filter(username="bob").exists()


def test_create_api_user_empty_stdin_rejected(tiers, scopes, no_password_env, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="password"):
        run("create_api_user", "bob", "--tier", "free", "--scope", "query:read")
    assert not User.objects.filter(username="bob").exists()


@pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3", reason="shares the SQLite test database file")
def test_create_api_user_unknown_tier_exits_non_zero(tiers, scopes):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ragsecure.settings.test",
        "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
        "RAGSECURE_PASSWORD": STRONG_PASSWORD,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "create_api_user", "bob", "--tier", "gold", "--scope", "query:read"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Unknown tier 'gold'" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------
# revoke_tokens
# ---------------------------------------------------------------------------


@pytest.mark.redis
def test_revoke_tokens_refuses_earlier_tokens(api, user, tokens):
    assert api.get("/api/v1/auth/me/", **bearer(tokens["access"])).status_code == 200
    run("revoke_tokens", "--user", "alice")
    assert_error(api.get("/api/v1/auth/me/", **bearer(tokens["access"])), 401, "token_revoked")
    assert_error(api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"), 401, "token_revoked")


@pytest.mark.redis
def test_revoke_tokens_leaves_other_users_alone(api, make_user):
    make_user("alice")
    make_user("bob")
    bob_tokens = obtain(api, "bob")
    run("revoke_tokens", "--user", "alice")
    assert api.get("/api/v1/auth/me/", **bearer(bob_tokens["access"])).status_code == 200


@pytest.mark.redis
def test_revoke_tokens_user_can_log_in_again(api, user, tokens):
    run("revoke_tokens", "--user", "alice")
    fresh = obtain(api, "alice")
    assert api.get("/api/v1/auth/me/", **bearer(fresh["access"])).status_code == 200


def test_revoke_tokens_unknown_user(transactional_db):
    with pytest.raises(CommandError, match="Unknown user 'nobody'"):
        run("revoke_tokens", "--user", "nobody")


# ---------------------------------------------------------------------------
# rotate_signing_key
# ---------------------------------------------------------------------------


@pytest.fixture
def instant_publication(settings):
    """Workers re-read the ring at once, so staging and promoting need no wait between them."""
    settings.RAGSECURE = {**settings.RAGSECURE, "SECRETS_CACHE_TTL": 0}


@pytest.mark.redis
def test_rotate_signing_key_changes_active_kid(restore_key_ring, transactional_db, instant_publication):
    old_kid = key_ring().active.kid
    output = run("rotate_signing_key")
    new_kid = key_ring().active.kid
    assert new_kid != old_kid
    assert new_kid in output


@pytest.mark.redis
def test_rotate_signing_key_old_tokens_still_verify(restore_key_ring, api, user, tokens, instant_publication):
    old_kid = key_ring().active.kid
    assert jwt.get_unverified_header(tokens["access"])["kid"] == old_kid
    run("rotate_signing_key")
    assert api.get("/api/v1/auth/me/", **bearer(tokens["access"])).status_code == 200
    refreshed = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200


@pytest.mark.redis
def test_rotate_signing_key_new_tokens_carry_new_kid(restore_key_ring, api, user, instant_publication):
    run("rotate_signing_key")
    new_kid = key_ring().active.kid
    fresh = obtain(api, "alice")
    assert jwt.get_unverified_header(fresh["access"])["kid"] == new_kid
    assert jwt.get_unverified_header(fresh["refresh"])["kid"] == new_kid
    assert api.get("/api/v1/auth/me/", **bearer(fresh["access"])).status_code == 200


def test_rotate_signing_key_jwks_lists_both(restore_key_ring, transactional_db, client, instant_publication):
    old_kid = key_ring().active.kid
    run("rotate_signing_key")
    new_kid = key_ring().active.kid
    kids = [key["kid"] for key in client.get("/.well-known/jwks.json", HTTP_HOST="localhost").json()["keys"]]
    assert kids[0] == new_kid
    assert set(kids) == {old_kid, new_kid}


def test_stage_publishes_then_promote_waits_for_the_cache_ttl(restore_key_ring, transactional_db, client, settings):
    """A staged key verifies at once and signs only after every worker can have loaded it."""
    settings.RAGSECURE = {**settings.RAGSECURE, "SECRETS_CACHE_TTL": 300}
    old_kid = key_ring().active.kid
    output = run("rotate_signing_key", "--stage")
    staged = key_ring().staged
    assert staged is not None and staged.kid in output and key_ring().active.kid == old_kid
    kids = [key["kid"] for key in client.get("/.well-known/jwks.json", HTTP_HOST="localhost").json()["keys"]]
    assert kids == [old_kid, staged.kid]

    with pytest.raises(CommandError, match="Promote it later"):
        run("rotate_signing_key", "--promote")
    assert key_ring().active.kid == old_kid
    run("rotate_signing_key", "--promote", "--force")
    assert key_ring().active.kid == staged.kid


def test_a_second_rotation_within_the_refresh_lifetime_needs_force(restore_key_ring, transactional_db, instant_publication):
    run("rotate_signing_key")
    rotated = key_ring().active.kid
    with pytest.raises(CommandError, match="within the refresh-token lifetime"):
        run("rotate_signing_key")
    assert key_ring().active.kid == rotated
    run("rotate_signing_key", "--force")
    assert key_ring().active.kid != rotated


def test_promote_without_a_staged_key_says_so(restore_key_ring, transactional_db):
    with pytest.raises(CommandError, match="No key is staged"):
        run("rotate_signing_key", "--promote")
