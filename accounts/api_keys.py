"""Service API keys: `rsk_<key_id>_<secret>`, checked against an HMAC digest, with the key's record cached briefly in Redis.

The `rsk_` prefix and fixed shape let secret scanners find leaked keys. The secret part is never stored: only its
HMAC-SHA256 under the `api-key-hmac-key` secret, compared in constant time. A record is cached for at most
API_KEY_CACHE_SECONDS, which bounds how long a revoked key can still pass when the cache could not be told.
"""

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.models import ApiKey
from ragsecure.redis_gate import RedisUnavailable, redis_gate
from ragsecure.secrets import SecretsError, get_secret

HMAC_SECRET = "api-key-hmac-key"
PREFIX = "rsk_"
API_KEY_CACHE_SECONDS = 30
LAST_USED_EVERY_SECONDS = 300
_SHAPE = re.compile(r"^rsk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")


class ApiKeyUnavailable(Exception):
    """The digest key cannot be read: no API key can be checked or made."""


@dataclass(frozen=True)
class ApiKeyRecord:
    """What checking a key needs, as cached."""

    id: str
    key_id: str
    user_id: int
    digest: str
    scopes: tuple[str, ...]
    expires_at: datetime
    revoked: bool


def new_key() -> tuple[str, str]:
    """(key_id, the whole key shown once)."""
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_key(raw: str) -> tuple[str, str] | None:
    """(key_id, secret) of a well-formed key, else None."""
    match = _SHAPE.fullmatch(raw)
    return (match.group(1), match.group(2)) if match else None


def key_digest(secret: str) -> str:
    try:
        pepper = get_secret(HMAC_SECRET)
    except SecretsError as exc:
        raise ApiKeyUnavailable(f"The {HMAC_SECRET} secret is unavailable ({type(exc).__name__})") from None
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def digest_matches(record: ApiKeyRecord | None, secret: str) -> bool:
    """Whether `secret` is the record's key, compared in constant time. The digest is computed even when there is no
    record, so the answer's timing says nothing about which key ids exist."""
    digest = key_digest(secret)
    return record is not None and hmac.compare_digest(record.digest, digest)


def _cache_key(key_id: str) -> str:
    return f"rs:apikey:{key_id}"


def _record_from_row(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        str(row.id), row.key_id, row.user_id, row.digest, tuple(row.scopes), row.expires_at, row.revoked_at is not None
    )


def _dump(record: ApiKeyRecord) -> str:
    return json.dumps({**record.__dict__, "scopes": list(record.scopes), "expires_at": record.expires_at.isoformat()})


def _load(raw: bytes) -> ApiKeyRecord | None:
    try:
        data = json.loads(raw)
        return ApiKeyRecord(**{**data, "scopes": tuple(data["scopes"]), "expires_at": datetime.fromisoformat(data["expires_at"])})
    except (ValueError, TypeError, KeyError):
        return None


def api_key_record(key_id: str) -> ApiKeyRecord | None:
    """The key's record: from Redis when cached (at most API_KEY_CACHE_SECONDS old), else the database; None if unknown."""
    try:
        cached = redis_gate.run(lambda client: client.get(_cache_key(key_id)))
    except RedisUnavailable:
        cached = None
    if cached is not None:
        record = _load(cached)
        if record is not None:
            return record
    row = ApiKey.objects.filter(key_id=key_id).first()
    if row is None:
        return None
    record = _record_from_row(row)
    try:
        redis_gate.run(lambda client: client.set(_cache_key(key_id), _dump(record), ex=API_KEY_CACHE_SECONDS))
    except RedisUnavailable:
        pass
    return record


def api_key_cache_forget(key_id: str) -> None:
    """Drop a cached record (after a revocation commits); when Redis cannot be told, the record's short TTL bounds it."""
    try:
        redis_gate.run(lambda client: client.delete(_cache_key(key_id)))
    except RedisUnavailable:
        pass


def api_key_touch(record: ApiKeyRecord) -> None:
    """Record that the key was used, at most once per LAST_USED_EVERY_SECONDS (never a database write per request)."""
    try:
        first = redis_gate.run(lambda client: client.set(f"{_cache_key(record.key_id)}:used", "1", nx=True, ex=LAST_USED_EVERY_SECONDS))
    except RedisUnavailable:
        return
    if first:
        ApiKey.objects.filter(pk=record.id).update(last_used_at=timezone.now())
