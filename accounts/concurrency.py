"""Concurrent-work slots per user (uploads being ingested, queries waiting on a model), so one caller cannot take every worker.

A slot is a member of a Redis sorted set scored by its lease's end: a worker that dies holding one frees it when the
lease ends. Per process while Redis is off or down (same limits, counted per worker).
"""

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from accounts.ratelimit import run_script
from audit.context import audit_verdict
from ragsecure.errors import RateLimited
from ragsecure.redis_gate import RedisUnavailable, redis_gate

# KEYS[1]: the slots. ARGV: lease_ms, limit, holder. -> 1 when the holder now has a slot, else 0. Server clock.
ACQUIRE_LUA = """
local key, lease, limit, holder = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) >= limit then
  return 0
end
redis.call('ZADD', key, now + lease, holder)
redis.call('PEXPIRE', key, lease)
return 1
"""
ACQUIRE_SHA = hashlib.sha1(ACQUIRE_LUA.encode(), usedforsecurity=False).hexdigest()


def slots_key(user_id: int, kind: str) -> str:
    return f"rs:{{u:{user_id}}}:slots:{kind}"


class _LocalSlots:
    """The same slots in process memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, float]] = {}

    def acquire(self, key: str, *, holder: str, limit: int, lease_seconds: float) -> bool:
        now = time.monotonic()
        with self._lock:
            holders = {name: end for name, end in self._held.get(key, {}).items() if end > now}
            if len(holders) >= limit:
                self._held[key] = holders
                return False
            holders[holder] = now + lease_seconds
            self._held[key] = holders
            return True

    def release(self, key: str, *, holder: str) -> None:
        with self._lock:
            holders = self._held.get(key, {})
            holders.pop(holder, None)
            if not holders:
                self._held.pop(key, None)


local_slots = _LocalSlots()


def _acquire(key: str, *, holder: str, limit: int, lease_seconds: float) -> tuple[bool, bool]:
    """(acquired, in Redis)."""
    args = (key, int(lease_seconds * 1000), limit, holder)
    try:
        return bool(redis_gate.run(lambda client: run_script(client, ACQUIRE_SHA, ACQUIRE_LUA, 1, args))), True
    except RedisUnavailable:
        return local_slots.acquire(key, holder=holder, limit=limit, lease_seconds=lease_seconds), False


def _release(key: str, *, holder: str, in_redis: bool) -> None:
    if not in_redis:
        local_slots.release(key, holder=holder)
        return
    try:
        redis_gate.run(lambda client: client.zrem(key, holder))
    except RedisUnavailable:
        pass  # the lease ends the slot


@contextmanager
def concurrency_slot(*, user_id: int, kind: str, limit: int, lease_seconds: float) -> Iterator[None]:
    """Hold one of the user's `limit` slots of `kind` for the block; raise RateLimited (429) when all are taken.

    The lease bounds how long a slot outlives a worker that died holding it; it should exceed the work's own bound.
    """
    key, holder = slots_key(user_id, kind), uuid.uuid4().hex
    acquired, in_redis = _acquire(key, holder=holder, limit=limit, lease_seconds=lease_seconds)
    audit_verdict("concurrency", {"kind": kind, "limit": limit, "allowed": acquired})
    if not acquired:
        raise RateLimited(f"Too many {kind} of yours are in progress; retry when one has finished.", headers={"Retry-After": "1"})
    try:
        yield
    finally:
        _release(key, holder=holder, in_redis=in_redis)
