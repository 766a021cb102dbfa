"""State changes for accounts: users, grants, tiers, token issuing, refresh and revocation."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import password_validation
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError

from accounts import revocation
from accounts.api_keys import api_key_cache_forget, key_digest, new_key, parse_key
from accounts.budgets import budgets_reset
from accounts.lockout import login_lockout_reset
from accounts.models import ApiKey, RefreshTokenRecord, RevokedAccessToken, Scope, Tier, TokenFamily, User
from accounts.ratelimit import rate_limit_reset, user_rate_key
from accounts.tokens import AccessToken, RefreshToken
from audit.context import audit_actor, audit_note
from ragsecure.conf import ragsecure_settings
from ragsecure.errors import TokenExpired, TokenInvalid, TokenRevoked, ValidationFailed
from ragsecure.redis_gate import RedisUnavailable


def _epoch_to_datetime(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _record(action: str, *, actor: User | None, reason: str, **details) -> None:
    """State what a service did, on the current audit entry (the request's or the command's)."""
    audit_note(action, actor=getattr(actor, "username", None) or "system", reason=reason, **details)


# ---------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------


def user_create(
    *, username: str, password: str, tier: Tier | None, scopes: list[Scope], actor: User | None = None
) -> User:
    """Create an API user with a validated password, a tier and granted scopes."""
    user = User(username=username, tier=tier)
    password_validation.validate_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save()
        user.scopes.set(scopes)
        _record(
            "user.create", actor=actor, reason="", user=username, tier=getattr(tier, "name", None), scopes=[scope.name for scope in scopes]
        )
    return user


def user_tier_change(*, users: list[User], tier: Tier, actor: User | None, reason: str) -> int:
    """Move users to `tier`; effective from their next request. Returns how many changed."""
    ids = [user.pk for user in users]
    with transaction.atomic():
        changed = User.objects.filter(pk__in=ids).exclude(tier=tier).update(tier=tier)
        for user_id in ids:
            revocation.cache_user_state_invalidate(user_id)
        _record("admin.change_tier", actor=actor, reason=reason, users=ids, tier=tier.name)
    return changed


def user_deactivate(*, users: list[User], actor: User | None, reason: str) -> int:
    """Deactivate users and revoke their tokens; effective from their next request."""
    ids = [user.pk for user in users]
    with transaction.atomic():
        changed = User.objects.filter(pk__in=ids, is_active=True).update(is_active=False)
        for user in users:
            user_tokens_revoke(user=user, actor=actor, reason=reason)
        _record("admin.deactivate_users", actor=actor, reason=reason, users=ids)
    return changed


def user_state_invalidate(*, user_ids: list[int]) -> None:
    """Make the next request of each user reload their state (scopes, activity, tier)."""
    for user_id in user_ids:
        revocation.cache_user_state_invalidate(user_id)


# ---------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedTokens:
    """A freshly issued access/refresh pair."""

    access: str
    refresh: str
    expires_in: int
    scopes: list[str]
    access_jti: str
    family_id: str


def _issue_pair(*, user: User, family: TokenFamily, scopes: list[str]) -> IssuedTokens:
    claims = {"sub": str(user.pk), "scopes": scopes, "gen": user.token_generation, "fam": family.id.hex}
    refresh = RefreshToken()
    access = AccessToken()
    for token in (refresh, access):
        for name, value in claims.items():
            token[name] = value
    expires_at = _epoch_to_datetime(refresh["exp"])
    RefreshTokenRecord.objects.create(jti=refresh["jti"], family=family, issued_at=refresh.current_time, expires_at=expires_at)
    TokenFamily.objects.filter(pk=family.pk).update(expires_at=expires_at)
    lifetime = int(ragsecure_settings.ACCESS_TOKEN_LIFETIME.total_seconds())
    return IssuedTokens(str(access), str(refresh), lifetime, scopes, access["jti"], family.id.hex)


def token_obtain(*, user: User, requested_scopes: list[str] | None, client_ip: str | None = None) -> IssuedTokens:
    """Start a token family for an authenticated user, down-scoped to `requested_scopes` (a subset of their grants)."""
    granted = sorted(user.scopes.values_list("name", flat=True))
    if requested_scopes is None:
        scopes = granted
    else:
        unknown = sorted(set(requested_scopes) - set(granted))
        if unknown:
            raise ValidationFailed(fields={"scopes": [f"Not granted: {', '.join(unknown)}."]})
        scopes = sorted(set(requested_scopes))
    with transaction.atomic():
        family = TokenFamily.objects.create(user=user, scopes=scopes, expires_at=timezone.now(), client_ip=client_ip)
        return _issue_pair(user=user, family=family, scopes=scopes)


def _decode_refresh(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)
    except ExpiredTokenError:
        raise TokenExpired("The refresh token has expired.") from None
    except TokenError:
        raise TokenInvalid("The refresh token is invalid.") from None


def token_refresh(*, raw_refresh: str) -> IssuedTokens:
    """Exchange a refresh token for a new pair. The old one is consumed atomically; presenting a consumed one revokes its family."""
    token = _decode_refresh(raw_refresh)
    jti = token["jti"]
    now = timezone.now()
    with transaction.atomic():
        consumed = RefreshTokenRecord.objects.filter(jti=jti, consumed_at__isnull=True).update(consumed_at=now)
        record = RefreshTokenRecord.objects.select_related("family", "family__user").filter(jti=jti).first()
        if record is None:
            raise TokenInvalid("The refresh token is invalid.")
        family = record.family
        user = family.user
        if family.id.hex != token["fam"] or str(user.pk) != token["sub"]:
            raise TokenInvalid("The refresh token is invalid.")
        audit_actor(user, auth_kind="jwt")
        if consumed:
            if family.revoked_at is not None or user.token_generation != token["gen"] or not user.is_active:
                raise TokenRevoked()
            granted = set(user.scopes.values_list("name", flat=True))
            scopes = [scope for scope in family.scopes if scope in granted]
            TokenFamily.objects.filter(pk=family.pk).update(last_refreshed_at=now)
            return _issue_pair(user=user, family=family, scopes=scopes)
    # Reuse of a consumed refresh token: whoever holds this family is suspect.
    token_family_revoke(family=family, actor=None, reason="refresh token reuse detected")
    raise TokenRevoked()


def token_family_revoke(*, family: TokenFamily, actor: User | None, reason: str) -> bool:
    """Revoke a token family: its refresh tokens and every access token minted from them. Returns False if already revoked."""
    with transaction.atomic():
        changed = TokenFamily.objects.filter(pk=family.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoke_reason=reason[:255]
        )
        family.refresh_from_db(fields=["expires_at", "revoked_at"])
        revocation.cache_family_revoked(user_id=family.user_id, family_id=family.id.hex, expires_at=family.expires_at)
        if changed:
            _record("token.family_revoke", actor=actor, reason=reason, family=family.id.hex, user=family.user_id)
    return bool(changed)


def access_token_revoke(*, token: AccessToken, actor: User | None, reason: str) -> None:
    """Put one access token on the denylist until it expires."""
    expires_at = _epoch_to_datetime(token["exp"])
    with transaction.atomic():
        RevokedAccessToken.objects.get_or_create(
            jti=token["jti"], defaults={"user_id": token.user_id, "expires_at": expires_at, "reason": reason[:255]}
        )
        revocation.cache_access_token_revoked(user_id=token.user_id, jti=token["jti"], expires_at=expires_at)
        _record("token.access_revoke", actor=actor, reason=reason, jti=token["jti"], user=token.user_id)


def token_revoke(*, raw_refresh: str, access: AccessToken, actor: User) -> None:
    """Logout: revoke the refresh token's family and the presenting access token, at once."""
    try:
        refresh = RefreshToken(raw_refresh)
    except ExpiredTokenError:
        refresh = None
    except TokenError:
        raise ValidationFailed(fields={"refresh": ["Not a valid refresh token."]}) from None
    if refresh is not None and refresh.user_id != actor.pk:
        raise ValidationFailed(fields={"refresh": ["Not a valid refresh token."]})
    with transaction.atomic():
        if refresh is not None:
            family = TokenFamily.objects.filter(pk=uuid.UUID(hex=refresh["fam"]), user_id=actor.pk).first()
            if family is not None:
                token_family_revoke(family=family, actor=actor, reason="revoked by its holder")
        access_token_revoke(token=access, actor=actor, reason="revoked by its holder")


def user_tokens_revoke(*, user: User, actor: User | None, reason: str) -> None:
    """Revoke every token the user holds (the per-user "revoke everything" marker), effective on the next request."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(token_generation=F("token_generation") + 1)
        TokenFamily.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now(), revoke_reason=reason[:255])
        revocation.cache_user_state_invalidate(user.pk)
        _record("admin.revoke_tokens", actor=actor, reason=reason, user=user.pk)


def user_limits_reset(*, users: list[User], actor: User | None, reason: str) -> None:
    """Operator reset: clear users' request logs, today's/this hour's budgets and sign-in lockouts."""
    for user in users:
        rate_limit_reset(user_rate_key(user.pk))
        budgets_reset(user_id=user.pk, kinds=(("llm_tokens", 86400), ("retrieved_bytes", 3600)))
        try:
            login_lockout_reset(username=user.get_username())
        except RedisUnavailable:
            pass
    _record("admin.reset_limits", actor=actor, reason=reason, users=[user.pk for user in users])


def storage_reserve(*, user_id: int, tier: Tier | None, size: int) -> bool:
    """Count one more stored document of `size` bytes against the user's tier caps; False (nothing counted) past them.

    One conditional UPDATE: concurrent uploads can never together pass a cap. Call it inside the transaction that
    stores the document, so a failed store gives the room back.
    """
    if tier is None or tier.max_documents < 1 or size > tier.max_stored_bytes:
        return False
    reserved = User.objects.filter(
        pk=user_id, documents_stored__lt=tier.max_documents, bytes_stored__lte=tier.max_stored_bytes - size
    ).update(documents_stored=F("documents_stored") + 1, bytes_stored=F("bytes_stored") + size)
    return reserved == 1


def storage_release(*, user_id: int, size: int) -> None:
    """Give back the room of one deleted document (never below zero)."""
    User.objects.filter(pk=user_id, documents_stored__gte=1, bytes_stored__gte=size).update(
        documents_stored=F("documents_stored") - 1, bytes_stored=F("bytes_stored") - size
    )


MAX_ACTIVE_API_KEYS = 2  # one in use and its successor, during a rotation


@dataclass(frozen=True)
class CreatedApiKey:
    key: ApiKey
    raw: str  # shown once, never stored


def api_key_create(*, user: User, name: str, scopes: list[str] | None, expires_at: datetime, actor: User | None) -> CreatedApiKey:
    """A new API key for `user` (a service account), down-scoped to a subset of their grants; the raw key is returned once.

    Raises ValidationFailed for scopes not granted, an expiry in the past, or a third active key.
    """
    granted = sorted(user.scopes.values_list("name", flat=True))
    chosen = granted if scopes is None else sorted(set(scopes))
    unknown = sorted(set(chosen) - set(granted))
    if unknown:
        raise ValidationFailed(fields={"scopes": [f"Not granted: {', '.join(unknown)}."]})
    if expires_at <= timezone.now():
        raise ValidationFailed(fields={"expires_at": ["The expiry must be in the future."]})
    with transaction.atomic():
        # Lock the user's row: two concurrent creations cannot both pass the active-key count.
        User.objects.select_for_update().filter(pk=user.pk).first()
        active = ApiKey.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()).count()
        if active >= MAX_ACTIVE_API_KEYS:
            raise ValidationFailed(
                fields={"user": [f"{user.username} already has {active} active API keys; revoke one first."]}
            )
        key_id, raw = new_key()
        key = ApiKey.objects.create(
            key_id=key_id, user=user, name=name[:100], digest=key_digest(parse_key(raw)[1]),
            scopes=chosen, expires_at=expires_at,
        )
        _record("api_key.create", actor=actor, reason="", key_id=key_id, user=user.pk, scopes=chosen, expires_at=expires_at.isoformat())
    return CreatedApiKey(key=key, raw=raw)


def api_key_revoke(*, keys: list[ApiKey], actor: User | None, reason: str) -> int:
    """Revoke keys at once (the cached record is dropped after commit; its TTL bounds it if Redis cannot be told)."""
    revoked = []
    with transaction.atomic():
        for key in keys:
            if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now(), revoke_reason=reason[:255]):
                revoked.append(key.key_id)
                transaction.on_commit(lambda key_id=key.key_id: api_key_cache_forget(key_id))
        _record("api_key.revoke", actor=actor, reason=reason, keys=revoked)
    return len(revoked)
