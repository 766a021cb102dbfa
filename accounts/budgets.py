"""Usage budgets per user and UTC window (retrieved bytes per hour, ...): an atomic check-and-add in Redis,
an in-process fallback in local mode or while Redis is down."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ragsecure.redis_gate import RedisUnavailable, redis_gate

# Adds `amount` only if the window's total stays within `limit`; returns {allowed, total, ms left in window}.
_CONSUME_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if current + amount > limit then
  return {0, current, redis.call('PTTL', KEYS[1])}
end
local total = redis.call('INCRBY', KEYS[1], amount)
if total == amount then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {1, total, redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class BudgetDecision:
    allowed: bool
    used: int
    limit: int
    retry_after: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


def _window(window_seconds: int, now: float) -> tuple[int, int]:
    """(window index, seconds until it ends) for fixed UTC-aligned windows."""
    index = int(now // window_seconds)
    return index, max(1, int((index + 1) * window_seconds - now + 0.999))


class LocalBudgets:
    """Per-process budgets: exact for one worker (local mode), a best-effort cap per worker while Redis is down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, int], int] = {}

    def consume(self, key: str, amount: int, limit: int, window_seconds: int, now: float) -> BudgetDecision:
        index, left = _window(window_seconds, now)
        with self._lock:
            for stale in [entry for entry in self._totals if entry[1] < index]:
                del self._totals[stale]
            total = self._totals.get((key, index), 0)
            if total + amount > limit:
                return BudgetDecision(False, total, limit, left)
            self._totals[(key, index)] = total + amount
            return BudgetDecision(True, total + amount, limit, left)

    def adjust(self, key: str, delta: int, index: int) -> None:
        with self._lock:
            self._totals[(key, index)] = max(0, self._totals.get((key, index), 0) + delta)

    def used(self, key: str, window_seconds: int, now: float) -> int:
        index, _ = _window(window_seconds, now)
        with self._lock:
            return self._totals.get((key, index), 0)


_local = LocalBudgets()
_scripts: dict[int, object] = {}


def _consume_script(client):
    """The consume script registered with this client (loaded once, then called by SHA)."""
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_CONSUME_LUA)
    return script


def budget_key(*, user_id: int, kind: str, window_index: int) -> str:
    return f"rs:{{u:{user_id}}}:budget:{kind}:{window_index}"


def budget_consume(
    *, user_id: int, kind: str, amount: int, limit: int, window_seconds: int, clock: Callable[[], float] = time.time
) -> BudgetDecision:
    """Atomically add `amount` to the user's `kind` budget of the current window if it stays within `limit`.

    A limit of 0 denies everything. Concurrent callers can never overspend.
    """
    now = clock()
    index, left = _window(window_seconds, now)
    if limit <= 0:
        return BudgetDecision(False, 0, 0, left)
    key = budget_key(user_id=user_id, kind=kind, window_index=index)
    try:
        allowed, total, ttl_ms = redis_gate.run(
            lambda client: _consume_script(client)(keys=[key], args=[amount, limit, (window_seconds + 60) * 1000], client=client)
        )
    except RedisUnavailable:
        return _local.consume(key, amount, limit, window_seconds, now)
    return BudgetDecision(bool(allowed), int(total), limit, left)


def budget_used(*, user_id: int, kind: str, window_seconds: int, clock: Callable[[], float] = time.time) -> int:
    """How much of the current window's budget the user has used."""
    now = clock()
    index, _ = _window(window_seconds, now)
    key = budget_key(user_id=user_id, kind=kind, window_index=index)
    try:
        value = redis_gate.run(lambda client: client.get(key))
    except RedisUnavailable:
        return _local.used(key, window_seconds, now)
    return int(value or 0)


def budget_settle(*, user_id: int, kind: str, delta: int, window_seconds: int, clock: Callable[[], float] = time.time) -> None:
    """Correct a reservation by `delta` (actual minus reserved; usually negative) in the current window."""
    if delta == 0:
        return
    now = clock()
    index, _ = _window(window_seconds, now)
    key = budget_key(user_id=user_id, kind=kind, window_index=index)
    ttl_ms = (window_seconds + 60) * 1000

    def apply(client) -> None:
        pipe = client.pipeline(transaction=True)
        pipe.incrby(key, delta)
        pipe.pexpire(key, ttl_ms)
        pipe.execute()

    try:
        redis_gate.run(apply)
    except RedisUnavailable:
        _local.adjust(key, delta, index)


def budgets_reset(*, user_id: int, kinds: tuple[tuple[str, int], ...], clock: Callable[[], float] = time.time) -> None:
    """Forget the user's usage of the current window of each (kind, window_seconds)."""
    now = clock()
    keys = [budget_key(user_id=user_id, kind=kind, window_index=_window(seconds, now)[0]) for kind, seconds in kinds]
    with _local._lock:
        for key in list(_local._totals):
            if key[0] in keys:
                del _local._totals[key]
    try:
        redis_gate.run(lambda client: client.delete(*keys))
    except RedisUnavailable:
        pass
