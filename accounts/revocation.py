"""The per-request token check: user state and revocations from Redis in one MGET, the database when Redis cannot answer.

Every key of one user shares the hash tag `{u:<id>}`, so a check touches one slot
(Redis Cluster-safe). A per-user `warm` marker says the user's revocations were
loaded from the database; without it (Redis restarted, keys evicted) the check
asks the database, which is authoritative, and warms the cache again.

Cached user state is stamped with the user's version counter (`ver`), read in
the same MGET. Invalidation increments the counter rather than deleting the
entry, so a request that read the database before a change and writes its copy
after it leaves an entry stamped with a stale version, which the next check
ignores.
"""

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ragsecure.conf import ragsecure_settings
from ragsecure.redis_gate import RedisUnavailable, redis_gate

logger = logging.getLogger("ragsecure.revocation")
DIRTY_CHECK_INTERVAL = 5.0
VERSION_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class UserState:
    """What the hot path needs to know about a user, cached in Redis and invalidated on change."""

    id: int
    username: str
    is_active: bool
    scopes: frozenset[str]
    tier_id: int | None
    token_generation: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "username": self.username,
                "active": self.is_active,
                "scopes": sorted(self.scopes),
                "tier": self.tier_id,
                "gen": self.token_generation,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> "UserState":
        data = json.loads(raw)
        return cls(data["id"], data["username"], data["active"], frozenset(data["scopes"]), data["tier"], data["gen"])


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of checking one access token: the user's state (None if the user is gone) and whether it is revoked."""

    state: UserState | None
    revoked: bool


def _key(user_id: int, kind: str, ident: str = "") -> str:
    suffix = f":{ident}" if ident else ""
    return f"rs:{{u:{user_id}}}:{kind}{suffix}"


def state_key(user_id: int) -> str:
    return _key(user_id, "state")


def version_key(user_id: int) -> str:
    return _key(user_id, "ver")


def warm_key(user_id: int) -> str:
    return _key(user_id, "warm")


def jti_key(user_id: int, jti: str) -> str:
    return _key(user_id, "jti", jti)


def family_key(user_id: int, family_id: str) -> str:
    return _key(user_id, "fam", family_id)


# ---------------------------------------------------------------------------
# Database (authoritative)
# ---------------------------------------------------------------------------


def user_state_from_db(user_id: int) -> UserState | None:
    """Load a user's state from the database; None when the user does not exist."""
    from accounts.models import User

    user = User.objects.filter(pk=user_id).only("id", "username", "is_active", "tier_id", "token_generation").first()
    if user is None:
        return None
    scopes = frozenset(user.scopes.values_list("name", flat=True))
    return UserState(user.id, user.username, user.is_active, scopes, user.tier_id, user.token_generation)


def revoked_in_db(*, jti: str, family_id: str) -> bool:
    """True when the database lists the access token's `jti` or its family as revoked."""
    from accounts.models import RevokedAccessToken, TokenFamily

    return (
        RevokedAccessToken.objects.filter(jti=jti).exists()
        or TokenFamily.objects.filter(id=_family_uuid(family_id), revoked_at__isnull=False).exists()
    )


def _family_uuid(family_id: str) -> str:
    import uuid

    try:
        return str(uuid.UUID(hex=family_id))
    except ValueError:
        return "00000000-0000-0000-0000-000000000000"


# ---------------------------------------------------------------------------
# Redis (cache)
# ---------------------------------------------------------------------------


def _ttl_ms(until: datetime, now: datetime) -> int:
    return max(1000, int((until - now).total_seconds() * 1000))


def _family_cache_until(expires_at: datetime) -> datetime:
    # Access tokens minted from a family's last refresh outlive it by at most one access lifetime.
    return expires_at + ragsecure_settings.ACCESS_TOKEN_LIFETIME + timedelta(seconds=ragsecure_settings.JWT_LEEWAY_SECONDS)


def _warm_user(client, user_id: int) -> None:
    """Load one user's live revocations from the database into Redis, then mark the user warm."""
    from accounts.models import RevokedAccessToken, TokenFamily

    now = timezone.now()
    pipe = client.pipeline(transaction=False)
    for jti, expires_at in RevokedAccessToken.objects.filter(user_id=user_id, expires_at__gt=now).values_list("jti", "expires_at"):
        pipe.set(jti_key(user_id, jti), b"1", px=_ttl_ms(expires_at + timedelta(seconds=ragsecure_settings.JWT_LEEWAY_SECONDS), now))
    horizon = now - ragsecure_settings.ACCESS_TOKEN_LIFETIME - timedelta(seconds=ragsecure_settings.JWT_LEEWAY_SECONDS)
    families = TokenFamily.objects.filter(user_id=user_id, revoked_at__isnull=False, expires_at__gt=horizon)
    for family_id, expires_at in families.values_list("id", "expires_at"):
        pipe.set(family_key(user_id, family_id.hex), b"1", px=_ttl_ms(_family_cache_until(expires_at), now))
    ttl = ragsecure_settings.REFRESH_TOKEN_LIFETIME + ragsecure_settings.ACCESS_TOKEN_LIFETIME
    pipe.set(warm_key(user_id), b"1", px=int(ttl.total_seconds() * 1000))
    pipe.execute()


_dirty_lock = threading.Lock()
_next_dirty_check = 0.0


def _sync_dirty_users(client) -> None:
    """Drop the cached entries of users whose revocation or state change could not reach Redis earlier."""
    global _next_dirty_check
    now = time.monotonic()
    if now < _next_dirty_check:
        return
    with _dirty_lock:
        if now < _next_dirty_check:
            return
        _next_dirty_check = now + DIRTY_CHECK_INTERVAL
    from accounts.models import CacheSyncState

    dirty = CacheSyncState.objects.filter(name__startswith="user:").values_list("name", "dirty_since")[:1000]
    for name, dirty_since in list(dirty):
        user_id = int(name.split(":", 1)[1])
        client.delete(warm_key(user_id), state_key(user_id))
        # A mark made by another process meanwhile stays for the next pass.
        CacheSyncState.objects.filter(name=name, dirty_since__lte=dirty_since).delete()


def mark_user_dirty(user_id: int) -> None:
    """Record in the database that the user's Redis entries may be stale (a write to Redis failed)."""
    from accounts.models import CacheSyncState

    CacheSyncState.objects.update_or_create(name=f"user:{user_id}", defaults={"dirty_since": timezone.now()})
    logger.warning("Revocation cache for user %s could not be updated; marked for resync", user_id)


def access_token_check(*, user_id: int, jti: str, family_id: str) -> TokenCheck:
    """The user's state and whether the token is revoked: one Redis round trip when the cache is warm."""
    try:
        return redis_gate.run(lambda client: _check_with_cache(client, user_id, jti, family_id))
    except RedisUnavailable:
        return TokenCheck(user_state_from_db(user_id), revoked_in_db(jti=jti, family_id=family_id))


def _check_with_cache(client, user_id: int, jti: str, family_id: str) -> TokenCheck:
    _sync_dirty_users(client)
    warm, jti_hit, family_hit, raw_state, version = client.mget(
        warm_key(user_id), jti_key(user_id, jti), family_key(user_id, family_id), state_key(user_id), version_key(user_id)
    )
    if warm is None:
        revoked = revoked_in_db(jti=jti, family_id=family_id)
        _warm_user(client, user_id)
    else:
        revoked = jti_hit is not None or family_hit is not None
    version = int(version or 0)
    state = _cached_state(raw_state, version)
    if state is None:
        # Stamped with the version read before the database: a change that
        # commits in between bumps the version and outdates this entry.
        state = user_state_from_db(user_id)
        if state is not None:
            entry = json.dumps({"ver": version, "state": state.to_json()})
            client.set(state_key(user_id), entry, ex=int(ragsecure_settings.USER_STATE_CACHE_TTL))
    return TokenCheck(state, revoked)


def _cached_state(raw: bytes | None, version: int) -> UserState | None:
    if raw is None:
        return None
    try:
        entry = json.loads(raw)
        if entry["ver"] != version:
            return None
        return UserState.from_json(entry["state"])
    except (ValueError, KeyError, TypeError):
        return None


# ---------------------------------------------------------------------------
# Write-through, after the database transaction commits
# ---------------------------------------------------------------------------


def _after_commit(user_id: int, operation) -> None:
    def apply() -> None:
        try:
            redis_gate.run(operation)
        except RedisUnavailable:
            from ragsecure.redis_gate import redis_configured

            if redis_configured():
                mark_user_dirty(user_id)

    transaction.on_commit(apply)


def cache_access_token_revoked(*, user_id: int, jti: str, expires_at: datetime) -> None:
    """Put a revoked `jti` in the Redis denylist once the transaction commits."""
    until = expires_at + timedelta(seconds=ragsecure_settings.JWT_LEEWAY_SECONDS)
    _after_commit(user_id, lambda client: client.set(jti_key(user_id, jti), b"1", px=_ttl_ms(until, timezone.now())))


def cache_family_revoked(*, user_id: int, family_id: str, expires_at: datetime) -> None:
    """Put a revoked token family in Redis once the transaction commits."""
    until = _family_cache_until(expires_at)
    _after_commit(user_id, lambda client: client.set(family_key(user_id, family_id), b"1", px=_ttl_ms(until, timezone.now())))


def cache_user_state_invalidate(user_id: int) -> None:
    """Outdate the user's cached state once the transaction commits; the next request reloads it."""

    def bump(client) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.incr(version_key(user_id))
        pipe.expire(version_key(user_id), VERSION_TTL_SECONDS)
        pipe.execute()

    _after_commit(user_id, bump)
