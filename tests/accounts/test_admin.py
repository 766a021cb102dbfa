"""The admin console: every page renders, roles see and do only what they may, actions need a reason and take effect at once."""

import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from accounts.models import RefreshTokenRecord, RevokedAccessToken, Scope, Tier, TokenFamily, User
from accounts.services import access_token_revoke
from accounts.tokens import AccessToken
from tests.conftest import PASSWORD, assert_error, bearer, obtain

pytestmark = [pytest.mark.redis, pytest.mark.database]

SCRIPT_NAME = "<script>alert(1)</script>"
USERS = "/admin/accounts/user/"
TIERS = "/admin/accounts/tier/"
SCOPES = "/admin/accounts/scope/"
FAMILIES = "/admin/accounts/tokenfamily/"
REVOKED = "/admin/accounts/revokedaccesstoken/"
GROUPS = "/admin/auth/group/"


def browser(user: User) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def ok(client: Client, url: str, expect: bytes | str | None = None):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.get("Location"))
    if expect is not None:
        expected = expect.encode() if isinstance(expect, str) else expect
        assert expected in response.content, url
    return response


def has_actions(response) -> bool:
    return b'name="action"' in response.content


def has_save_button(response) -> bool:
    return b'name="_save"' in response.content


@pytest.fixture
def superuser(transactional_db) -> User:
    return User.objects.create_superuser(username="root", password=PASSWORD)


@pytest.fixture
def root(superuser) -> Client:
    return browser(superuser)


@pytest.fixture
def roles(transactional_db):
    call_command("bootstrap", stdout=io.StringIO())


@pytest.fixture
def make_staff(roles):
    def make(username: str, role: str) -> User:
        staff = User.objects.create_user(username=username, password=PASSWORD, is_staff=True)
        staff.groups.add(Group.objects.get(name=role))
        return staff

    return make


@pytest.fixture
def viewer(make_staff) -> Client:
    return browser(make_staff("vera", "security-viewer"))


@pytest.fixture
def operator(make_staff) -> Client:
    return browser(make_staff("otto", "security-operator"))


@pytest.fixture
def family(tokens) -> TokenFamily:
    return TokenFamily.objects.get()


@pytest.fixture
def revoked_access(api, user) -> RevokedAccessToken:
    pair = obtain(api, user.username)
    access_token_revoke(token=AccessToken(pair["access"]), actor=None, reason="test")
    return RevokedAccessToken.objects.get()


def me(api, tokens):
    return api.get("/api/v1/auth/me/", **bearer(tokens["access"]))


# ---------------------------------------------------------------------------
# Smoke: every page, as a superuser
# ---------------------------------------------------------------------------


def test_admin_index(root):
    ok(root, "/admin/", "Token families")


def test_user_pages(root, make_user, tiers):
    alice = make_user("alice")
    make_user("bob", tier="pro")
    ok(root, USERS, "alice")
    ok(root, f"{USERS}{alice.pk}/change/", "API access")
    ok(root, f"{USERS}add/")
    search = ok(root, f"{USERS}?q=alice", "alice")
    assert b">bob<" not in search.content
    ok(root, f"{USERS}?is_active__exact=1", "alice")
    by_tier = ok(root, f"{USERS}?tier__id__exact={tiers['pro'].pk}", "bob")
    assert b">alice<" not in by_tier.content


def test_tier_pages(root, tiers):
    free = tiers["free"]
    ok(root, TIERS, "enterprise")
    ok(root, f"{TIERS}{free.pk}/change/", "requests_per_minute")
    ok(root, f"{TIERS}add/")
    search = ok(root, f"{TIERS}?q=pro", "pro")
    assert b"enterprise" not in search.content
    ok(root, f"{TIERS}?o=2", "free")


def test_scope_pages(root, scopes):
    ok(root, SCOPES, "documents:write")
    ok(root, f"{SCOPES}{scopes['admin'].pk}/change/", "Administer documents")
    ok(root, f"{SCOPES}add/")
    search = ok(root, f"{SCOPES}?q=query", "query:read")
    assert b"documents:write" not in search.content
    ok(root, f"{SCOPES}?o=1", "admin")


def test_token_family_pages(root, family):
    record = RefreshTokenRecord.objects.get(family=family)
    ok(root, FAMILIES, str(family.id))
    change = ok(root, f"{FAMILIES}{family.pk}/change/", record.jti)  # the refresh-token inline
    assert not has_save_button(change)
    ok(root, f"{FAMILIES}?q=alice", str(family.id))
    ok(root, f"{FAMILIES}?revoked_at__isempty=1", str(family.id))
    ok(root, f"{FAMILIES}?created_at__year={family.created_at.year}", str(family.id))


def test_revoked_access_token_pages(root, revoked_access):
    ok(root, REVOKED, revoked_access.jti)
    change = ok(root, f"{REVOKED}{revoked_access.pk}/change/", revoked_access.jti)
    assert not has_save_button(change)
    ok(root, f"{REVOKED}?q=alice", revoked_access.jti)
    ok(root, f"{REVOKED}?revoked_at__year={revoked_access.revoked_at.year}", revoked_access.jti)


def test_logout_is_listed_in_revoked_tokens(root, api, user, tokens):
    response = api.post("/api/v1/auth/token/revoke/", {"refresh": tokens["refresh"]}, format="json", **bearer(tokens["access"]))
    assert response.status_code == 204
    jti = AccessToken(tokens["access"])["jti"]
    ok(root, f"{REVOKED}?q={jti}", jti)
    ok(root, f"{FAMILIES}?revoked_at__isempty=0", "revoked by its holder")


def test_group_pages(root, roles):
    operators = Group.objects.get(name="security-operator")
    ok(root, GROUPS, "security-viewer")
    ok(root, f"{GROUPS}{operators.pk}/change/", "security-operator")
    ok(root, f"{GROUPS}add/")
    search = ok(root, f"{GROUPS}?q=operator", "security-operator")
    assert b"security-viewer" not in search.content


def test_unknown_filter_is_refused_not_an_error(root, transactional_db):
    response = root.get(f"{USERS}?password__startswith=argon2")
    assert response.status_code in (302, 400)


# ---------------------------------------------------------------------------
# Security records are read-only, even for superusers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("base", [FAMILIES, REVOKED])
def test_security_records_cannot_be_added(root, base):
    assert root.get(f"{base}add/").status_code == 403
    assert root.post(f"{base}add/", {}).status_code == 403


def test_token_family_cannot_be_deleted_or_edited(root, family):
    assert root.get(f"{FAMILIES}{family.pk}/delete/").status_code == 403
    assert root.post(f"{FAMILIES}{family.pk}/delete/", {"post": "yes"}).status_code == 403
    assert root.post(f"{FAMILIES}{family.pk}/change/", {"revoke_reason": "edited", "_save": "Save"}).status_code == 403
    assert TokenFamily.objects.filter(pk=family.pk, revoke_reason="").exists()


def test_revoked_access_token_cannot_be_deleted(root, revoked_access):
    assert root.post(f"{REVOKED}{revoked_access.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RevokedAccessToken.objects.filter(pk=revoked_access.pk).exists()


def test_no_bulk_delete_of_security_records(root, family, api):
    assert b"delete_selected" not in ok(root, FAMILIES).content
    root.post(FAMILIES, {"action": "delete_selected", "_selected_action": [family.pk], "post": "yes"})
    assert TokenFamily.objects.filter(pk=family.pk).exists()


def test_security_records_hidden_from_api_users(client, user):
    client.force_login(user)
    response = client.get(FAMILIES, HTTP_HOST="localhost")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# ---------------------------------------------------------------------------
# Rendered values are escaped
# ---------------------------------------------------------------------------


def test_username_escaped_in_changelist(root, make_user):
    make_user(SCRIPT_NAME)
    response = ok(root, USERS, "&lt;script&gt;alert(1)&lt;/script&gt;")
    assert SCRIPT_NAME.encode() not in response.content


def test_username_escaped_on_action_page(operator, make_user):
    target = make_user(SCRIPT_NAME)
    response = operator.post(USERS, {"action": "revoke_all_tokens", "_selected_action": [target.pk], "index": "0"})
    assert response.status_code == 200
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content
    assert SCRIPT_NAME.encode() not in response.content


# ---------------------------------------------------------------------------
# security-viewer: reads, never changes
# ---------------------------------------------------------------------------


def test_viewer_reads_users_without_actions(viewer, user):
    changelist = ok(viewer, USERS, "alice")
    assert not has_actions(changelist)
    change = ok(viewer, f"{USERS}{user.pk}/change/", "alice")
    assert not has_save_button(change)


def test_viewer_reads_tokens_without_actions(viewer, family, revoked_access):
    assert not has_actions(ok(viewer, FAMILIES, str(family.id)))
    ok(viewer, f"{FAMILIES}{family.pk}/change/")
    ok(viewer, REVOKED, revoked_access.jti)
    ok(viewer, f"{REVOKED}{revoked_access.pk}/change/")


def test_viewer_cannot_change_user(viewer, user, tiers):
    response = viewer.post(
        f"{USERS}{user.pk}/change/",
        {"username": "alice", "is_active": "", "tier": tiers["enterprise"].pk, "_save": "Save"},
    )
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.is_active and user.tier == tiers["free"]


def test_viewer_cannot_add_user(viewer, transactional_db):
    assert viewer.get(f"{USERS}add/").status_code == 403


def test_viewer_cannot_run_operator_action(viewer, api, user, tokens):
    viewer.post(USERS, {"action": "revoke_all_tokens", "_selected_action": [user.pk], "apply": "1", "reason": "viewer tries"})
    viewer.post(USERS, {"action": "deactivate_users", "_selected_action": [user.pk], "apply": "1", "reason": "viewer tries"})
    user.refresh_from_db()
    assert user.is_active and user.token_generation == 0
    assert me(api, tokens).status_code == 200


def test_viewer_cannot_edit_tiers(viewer, tiers):
    free = tiers["free"]
    ok(viewer, f"{TIERS}{free.pk}/change/")
    response = viewer.post(f"{TIERS}{free.pk}/change/", tier_form(free, requests_per_minute=100000))
    assert response.status_code == 403
    free.refresh_from_db()
    assert free.requests_per_minute == 10


def test_viewer_cannot_manage_groups(viewer, transactional_db):
    assert viewer.get(GROUPS).status_code == 403


# ---------------------------------------------------------------------------
# security-operator: audited actions with a reason; no direct edits
# ---------------------------------------------------------------------------


def tier_form(tier: Tier, **changes) -> dict:
    fields = (
        "name", "requests_per_minute", "llm_tokens_per_day", "max_top_k", "max_document_bytes", "retrieved_bytes_per_hour",
        "max_documents", "max_stored_bytes",
    )
    return {**{field: getattr(tier, field) for field in fields}, **changes, "_save": "Save"}


def start_action(client: Client, url: str, action: str, pks: list) -> object:
    return client.post(url, {"action": action, "_selected_action": pks, "index": "0"})


def apply_action(client: Client, url: str, action: str, pks: list, **fields) -> object:
    return client.post(url, {"action": action, "_selected_action": pks, "apply": "1", **fields})


def test_operator_sees_user_actions(operator, user):
    changelist = ok(operator, USERS)
    for action in ("revoke_all_tokens", "change_tier", "deactivate_users"):
        assert f'value="{action}"'.encode() in changelist.content
    assert b"delete_selected" not in changelist.content


def test_operator_sees_family_action(operator, family):
    assert b'value="revoke_families"' in ok(operator, FAMILIES).content


ACTIONS = [(USERS, "revoke_all_tokens"), (USERS, "change_tier"), (USERS, "deactivate_users"), (FAMILIES, "revoke_families")]


@pytest.mark.parametrize("url, action", ACTIONS)
def test_action_first_shows_reason_form_and_changes_nothing(operator, user, family, tiers, url, action):
    pk = user.pk if url == USERS else family.pk
    response = start_action(operator, url, action, [pk])
    assert response.status_code == 200
    assert b'name="reason"' in response.content
    assert f'name="_selected_action" value="{pk}"'.encode() in response.content
    assert_unchanged(user, family, tiers)


@pytest.mark.parametrize("reason", ["", "ab", "   "], ids=["empty", "short", "blank"])
@pytest.mark.parametrize("url, action", ACTIONS)
def test_action_without_valid_reason_reshows_form(operator, api, user, tokens, family, tiers, url, action, reason):
    pk = user.pk if url == USERS else family.pk
    response = apply_action(operator, url, action, [pk], reason=reason, tier=tiers["pro"].pk)
    assert response.status_code == 200
    assert b'name="reason"' in response.content
    assert b"errorlist" in response.content
    assert_unchanged(user, family, tiers)
    assert me(api, tokens).status_code == 200


def assert_unchanged(user: User, family: TokenFamily, tiers: dict) -> None:
    user.refresh_from_db()
    family.refresh_from_db()
    assert (user.is_active, user.token_generation, user.tier_id) == (True, 0, tiers["free"].pk)
    assert family.revoked_at is None


def test_operator_revokes_all_tokens(operator, api, user, tokens):
    assert me(api, tokens).status_code == 200  # warm the cache first
    response = apply_action(operator, USERS, "revoke_all_tokens", [user.pk], reason="suspected credential leak")
    assert response.status_code == 302
    assert_error(me(api, tokens), 401, "token_revoked")
    assert_error(api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"), 401, "token_revoked")


def test_operator_revoke_spares_unselected_users(operator, api, make_user):
    alice = make_user("alice")
    make_user("bob")
    bob_tokens = obtain(api, "bob")
    apply_action(operator, USERS, "revoke_all_tokens", [alice.pk], reason="suspected credential leak")
    assert me(api, bob_tokens).status_code == 200


def test_operator_changes_tier_effective_next_request(operator, api, user, tokens, tiers):
    assert me(api, tokens).json()["tier"]["name"] == "free"
    response = apply_action(operator, USERS, "change_tier", [user.pk], tier=tiers["pro"].pk, reason="customer upgraded")
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.tier == tiers["pro"]
    assert me(api, tokens).json()["tier"]["name"] == "pro"


def test_change_tier_needs_a_tier(operator, user, tiers):
    response = apply_action(operator, USERS, "change_tier", [user.pk], reason="customer upgraded")
    assert response.status_code == 200 and b"errorlist" in response.content
    user.refresh_from_db()
    assert user.tier == tiers["free"]


def test_operator_deactivates_user(operator, api, user, tokens):
    assert me(api, tokens).status_code == 200
    response = apply_action(operator, USERS, "deactivate_users", [user.pk], reason="account compromised")
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_active
    assert_error(me(api, tokens), 401, "token_revoked")
    assert_error(api.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, format="json"), 401, "authentication_failed")


def test_operator_revokes_token_family(operator, api, user, tokens, family):
    assert me(api, tokens).status_code == 200
    response = apply_action(operator, FAMILIES, "revoke_families", [family.pk], reason="stolen laptop")
    assert response.status_code == 302
    family.refresh_from_db()
    assert family.revoked_at is not None and family.revoke_reason == "stolen laptop"
    assert_error(me(api, tokens), 401, "token_revoked")
    assert_error(api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json"), 401, "token_revoked")


def test_revoke_family_spares_other_sessions(operator, api, user, tokens, family):
    other = obtain(api, "alice")
    apply_action(operator, FAMILIES, "revoke_families", [family.pk], reason="stolen laptop")
    assert me(api, other).status_code == 200


def test_operator_cannot_edit_users_directly(operator, make_staff, user):
    otto = User.objects.get(username="otto")
    response = operator.post(
        f"{USERS}{otto.pk}/change/", {"username": "otto", "is_staff": "on", "is_superuser": "on", "is_active": "on", "_save": "Save"}
    )
    assert response.status_code == 403
    otto.refresh_from_db()
    assert not otto.is_superuser


def test_operator_cannot_edit_tiers(operator, tiers):
    free = tiers["free"]
    change = ok(operator, f"{TIERS}{free.pk}/change/")
    assert not has_save_button(change)
    assert operator.post(f"{TIERS}{free.pk}/change/", tier_form(free, requests_per_minute=100000)).status_code == 403
    assert operator.get(f"{TIERS}add/").status_code == 403
    free.refresh_from_db()
    assert free.requests_per_minute == 10


def test_operator_cannot_edit_scopes(operator, scopes):
    admin_scope = scopes["admin"]
    response = operator.post(f"{SCOPES}{admin_scope.pk}/change/", {"name": "admin", "description": "hijacked", "_save": "Save"})
    assert response.status_code == 403
    assert operator.post(f"{SCOPES}add/", {"name": "superpowers", "_save": "Save"}).status_code == 403
    assert Scope.objects.get(pk=admin_scope.pk).description != "hijacked"
    assert not Scope.objects.filter(name="superpowers").exists()


def test_superuser_edits_tiers(root, tiers):
    free = tiers["free"]
    response = root.post(f"{TIERS}{free.pk}/change/", tier_form(free, requests_per_minute=25))
    assert response.status_code == 302
    free.refresh_from_db()
    assert free.requests_per_minute == 25


def test_superuser_edits_scopes(root, scopes):
    query = scopes["query:read"]
    response = root.post(f"{SCOPES}{query.pk}/change/", {"name": "query:read", "description": "Ask questions.", "_save": "Save"})
    assert response.status_code == 302
    assert Scope.objects.get(pk=query.pk).description == "Ask questions."


def test_superuser_rejects_invalid_scope_name(root, transactional_db):
    response = root.post(f"{SCOPES}add/", {"name": "../Admin", "description": "", "_save": "Save"})
    assert response.status_code == 200 and b"errorlist" in response.content
    assert not Scope.objects.filter(name="../Admin").exists()


def test_superuser_password_change_revokes_tokens(root, api, user, tokens):
    assert me(api, tokens).status_code == 200
    response = root.post(
        f"{USERS}{user.pk}/password/",
        {"password1": "another-long-password-77", "password2": "another-long-password-77", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    assert_error(me(api, tokens), 401, "token_revoked")


# --- API keys


API_KEYS = "/admin/accounts/apikey/"


def test_an_operator_creates_an_api_key_shown_once_and_revokes_it(operator, user, api):
    from django.contrib.messages import get_messages

    from accounts.models import ApiKey

    response = operator.post(
        USERS, {"action": "create_api_key", "_selected_action": [user.pk], "apply": "1", "reason": "billing integration",
                "name": "billing-service", "expires_in_days": "30"},
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    raw = response.content.decode().split('<code id="api-key">')[1].split("</code>")[0]
    assert not list(get_messages(response.wsgi_request)) and "messages" not in response.cookies
    key = ApiKey.objects.get(user=user)
    assert raw.startswith(f"rsk_{key.key_id}_")
    assert api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"ApiKey {raw}").status_code == 200

    page = ok(operator, f"{API_KEYS}{key.pk}/change/", key.key_id)
    assert raw.encode() not in page.content and key.digest.encode() not in page.content
    assert not has_save_button(page)
    revoked = apply_action(operator, API_KEYS, "revoke_keys", [key.pk], reason="rotated out")
    assert revoked.status_code == 302
    assert api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"ApiKey {raw}").status_code == 401


def test_a_viewer_sees_api_keys_but_cannot_act(viewer, user):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.services import api_key_create

    created = api_key_create(user=user, name="svc", scopes=None, expires_at=timezone.now() + timedelta(days=1), actor=None)
    listing = ok(viewer, API_KEYS, created.key.key_id)
    assert not has_actions(listing)
