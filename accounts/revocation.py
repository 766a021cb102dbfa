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

import hashlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.ratelimit import (
    MAX_LIMIT,
    SLIDE_LUA,
    RateDecision,
    local_limiter,
    redis_limiter,
    run_script,
    user_rate_key,
)
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
    requests_per_minute: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "username": self.username,
                "active": self.is_active,
                "scopes": sorted(self.scopes),
                "tier": self.tier_id,
                "gen": self.token_generation,
                "rpm": self.requests_per_minute,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> "UserState":
        data = json.loads(raw)
        return cls(
            data["id"], data["username"], data["active"], frozenset(data["scopes"]), data["tier"], data["gen"], data.get("rpm", 0)
        )


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of checking one access token: the user's state (None if the user is gone), whether it is
    revoked, and (when asked to count the request) the rate limiter's decision."""

    state: UserState | None
    revoked: bool
    rate: RateDecision | None = None


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

    user = (
        User.objects.filter(pk=user_id)
        .select_related("tier")
        .only("id", "username", "is_active", "tier_id", "token_generation", "tier__requests_per_minute")
        .first()
    )
    if user is None:
        return None
    scopes = frozenset(user.scopes.values_list("name", flat=True))
    rpm = user.tier.requests_per_minute if user.tier is not None else 0
    return UserState(user.id, user.username, user.is_active, scopes, user.tier_id, user.token_generation, rpm)


def revoked_in_db(*, jti: str, family_id: str) -> bool:
    """True when the database lists the access token's `jti` or its family as revoked."""
    from accounts.models import RevokedAccessToken, TokenFamily

    return (
        RevokedAccessToken.objects.filter(jti=jti).exists()
        or TokenFamily.objects.filter(id=_family_uuid(family_id), revoked_at__isnull=False).exists()
    )


def _family_uuid(family_id: str) -> str:
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


# The whole authenticated hot path in one script: revocation markers, cached state and its
# version, and — when the state is fresh, the user active, the token's generation current and
# nothing revoked — the request counted against the tier's per-minute limit (the state entry
# carries `rpm`, `active` and `gen` at its top level for this). A refused token never uses up
# its user's allowance.
# KEYS: warm, jti, family, state, version, request log. ARGV: now_ms ('' = server time), window_ms, member, token generation.
HOT_PATH_LUA = """
local values = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
local warm, jti, family, state, version = values[1], values[2], values[3], values[4], values[5]
local result = {warm, jti, family, state, version}
if warm and not jti and not family and state then
  local ok, entry = pcall(cjson.decode, state)
  if ok and type(entry) == 'table' and tonumber(entry['ver']) == tonumber(version or '0')
     and entry['active'] == true and tonumber(entry['gen']) == tonumber(ARGV[4]) then
    local key, now, window = KEYS[6], tonumber(ARGV[1]), tonumber(ARGV[2])
    local limit = math.min(tonumber(entry['rpm']) or 0, tonumber(ARGV[3]))
""" + SLIDE_LUA + """
    result[6] = decision
  end
end
return result
"""
HOT_PATH_SHA = hashlib.sha1(HOT_PATH_LUA.encode(), usedforsecurity=False).hexdigest()


def access_token_check(
    *, user_id: int, jti: str, family_id: str, count_request: bool = False, token_generation: int | None = None
) -> TokenCheck:
    """The user's state, whether the token is revoked and, if `count_request`, the rate decision for this request.

    One Redis round trip when the cache is warm; the database and per-process limits when Redis cannot answer.
    """
    try:
        return redis_gate.run(lambda client: _check_with_cache(client, user_id, jti, family_id, count_request, token_generation))
    except RedisUnavailable:
        state = user_state_from_db(user_id)
        revoked = revoked_in_db(jti=jti, family_id=family_id)
        rate = None
        if count_request and _countable(state, revoked, token_generation):
            rate = local_limiter.hit(user_rate_key(user_id), limit=state.requests_per_minute, window_seconds=60)
        return TokenCheck(state, revoked, rate)


def _countable(state: UserState | None, revoked: bool, token_generation: int | None) -> bool:
    """Only a request its token check will accept counts against the user's limit."""
    return state is not None and not revoked and state.is_active and state.token_generation == token_generation


def _check_with_cache(
    client, user_id: int, jti: str, family_id: str, count_request: bool, token_generation: int | None
) -> TokenCheck:
    _sync_dirty_users(client)
    keys = [warm_key(user_id), jti_key(user_id, jti), family_key(user_id, family_id), state_key(user_id), version_key(user_id)]
    if count_request:
        args = ("", 60_000, MAX_LIMIT, -1 if token_generation is None else token_generation)
        result = run_script(client, HOT_PATH_SHA, HOT_PATH_LUA, len(keys) + 1, (*keys, user_rate_key(user_id), *args))
        warm, jti_hit, family_hit, raw_state, version = result[:5]
        rate = RateDecision.from_script(result[5], 0) if len(result) > 5 else None
    else:
        warm, jti_hit, family_hit, raw_state, version = client.mget(*keys)
        rate = None
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
            entry = json.dumps(
                {
                    "ver": version,
                    "rpm": state.requests_per_minute,
                    "active": state.is_active,
                    "gen": state.token_generation,
                    "state": state.to_json(),
                }
            )
            client.set(state_key(user_id), entry, ex=int(ragsecure_settings.USER_STATE_CACHE_TTL))
    if rate is not None and state is not None:
        rate = RateDecision(rate.allowed, state.requests_per_minute, rate.remaining, rate.reset_seconds)
    elif count_request and _countable(state, revoked, token_generation):
        # Cold path (state just loaded, or a revocation marker missing): count in a second call.
        rate = redis_limiter.hit(user_rate_key(user_id), limit=state.requests_per_minute, window_seconds=60)
    return TokenCheck(state, revoked, rate)


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


def _resync_in_transaction(user_id: int) -> None:
    """Mark the user for resync in the revocation's own transaction, whatever happens to the Redis write after it.

    The write may fail, or reach another Redis than the one serving (a command run with another REDIS_URL): every
    serving process drops the user's cached entries at its next resync (within DIRTY_CHECK_INTERVAL seconds) and
    reads the database, which is authoritative.
    """
    from accounts.models import CacheSyncState

    CacheSyncState.objects.update_or_create(name=f"user:{user_id}", defaults={"dirty_since": timezone.now()})


def cache_access_token_revoked(*, user_id: int, jti: str, expires_at: datetime) -> None:
    """Put a revoked `jti` in the Redis denylist once the transaction commits."""
    until = expires_at + timedelta(seconds=ragsecure_settings.JWT_LEEWAY_SECONDS)
    _resync_in_transaction(user_id)
    _after_commit(user_id, lambda client: client.set(jti_key(user_id, jti), b"1", px=_ttl_ms(until, timezone.now())))


def cache_family_revoked(*, user_id: int, family_id: str, expires_at: datetime) -> None:
    """Put a revoked token family in Redis once the transaction commits."""
    until = _family_cache_until(expires_at)
    _resync_in_transaction(user_id)
    _after_commit(user_id, lambda client: client.set(family_key(user_id, family_id), b"1", px=_ttl_ms(until, timezone.now())))


def cache_users_state_invalidate(user_ids: list[int]) -> None:
    """Outdate the cached state of many users (a tier edit) in pipelined batches, once the transaction commits."""

    def bump(client) -> None:
        for start in range(0, len(user_ids), 5000):
            pipe = client.pipeline(transaction=False)
            for user_id in user_ids[start : start + 5000]:
                pipe.incr(version_key(user_id))
                pipe.expire(version_key(user_id), VERSION_TTL_SECONDS)
            pipe.execute()

    def apply() -> None:
        try:
            redis_gate.run(bump)
        except RedisUnavailable:
            from ragsecure.redis_gate import redis_configured

            if redis_configured():
                for user_id in user_ids:
                    mark_user_dirty(user_id)

    if user_ids:
        transaction.on_commit(apply)


def cache_user_state_invalidate(user_id: int) -> None:
    """Outdate the user's cached state once the transaction commits; the next request reloads it."""
    _resync_in_transaction(user_id)

    def bump(client) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.incr(version_key(user_id))
        pipe.expire(version_key(user_id), VERSION_TTL_SECONDS)
        pipe.execute()

    _after_commit(user_id, bump)
