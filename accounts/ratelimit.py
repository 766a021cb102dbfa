"""The request rate limiter: an exact sliding window (a log of request times), atomic in one Redis round trip.

One interface, two backends: Redis (a Lua script loaded once and called by SHA; the
server's clock, so workers' clock skew does not matter) and in-process (local mode,
and the fallback while Redis is down). Keys are shaped `rs:{<tag>}:<kind>`; every
key one script touches shares the hash tag, so the same code runs on Redis Cluster.
"""

import itertools
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass

from ragsecure.redis_gate import RedisUnavailable, redis_gate

# slide(log key, now_ms or nil for the Redis server's clock, window_ms, limit, member)
# -> {allowed, remaining, ms until the oldest logged request leaves the window}.
SLIDE_LUA_FUNCTION = """
local function slide(key, now, window, limit, member)
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  -- Read the oldest entry first: trim only when it has left the window, and reuse it for the reset.
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local count = 0
  if oldest[2] then
    if tonumber(oldest[2]) <= now - window then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
      oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    end
    if oldest[2] then
      count = redis.call('ZCARD', key)
    end
  end
  local allowed = 0
  if limit > 0 and count < limit then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
    count = count + 1
    allowed = 1
    if not oldest[2] then
      oldest = {member, now}
    end
  end
  local reset = window
  if oldest[2] then
    reset = math.max(0, tonumber(oldest[2]) + window - now)
  end
  return {allowed, math.max(0, limit - count), reset}
end
"""
# KEYS[1]: the log. ARGV: now_ms ('' = server time), window_ms, limit, member.
SLIDING_LOG_LUA = SLIDE_LUA_FUNCTION + """
return slide(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
"""


class _Members:
    """Unique log members, cheaper than a UUID each: a random per-process prefix and a counter (renewed in forked children)."""

    def __init__(self) -> None:
        self._renew()
        os.register_at_fork(after_in_child=self._renew)

    def _renew(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


log_members = _Members()


@dataclass(frozen=True)
class RateDecision:
    """The limiter's answer, with what the RateLimit-* headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_seconds)

    @classmethod
    def from_script(cls, result, limit: int) -> "RateDecision":
        allowed, remaining, reset_ms = (int(value) for value in result)
        return cls(bool(allowed), limit, remaining, max(0, math.ceil(reset_ms / 1000)))


class RateLimiter(ABC):
    """Counts requests against a limit per rolling window; never admits more than `limit` in any window."""

    @abstractmethod
    def hit(self, key: str, *, limit: int, window_seconds: int, now_ms: int | None = None) -> RateDecision:
        """Record a request if it is within the limit; return the decision. A limit of 0 denies."""

    @abstractmethod
    def count(self, key: str, *, window_seconds: int, now_ms: int | None = None) -> int:
        """Requests logged in the current window."""

    @abstractmethod
    def reset(self, *keys: str) -> None:
        """Forget the logged requests of these keys."""


class RedisRateLimiter(RateLimiter):
    """The sliding log in a Redis sorted set, checked and recorded by one script call."""

    def __init__(self) -> None:
        self._scripts: dict[int, object] = {}

    def _script(self, client):
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(SLIDING_LOG_LUA)
        return script

    def hit(self, key: str, *, limit: int, window_seconds: int, now_ms: int | None = None) -> RateDecision:
        args = ["" if now_ms is None else now_ms, window_seconds * 1000, limit, log_members.next()]
        result = redis_gate.run(lambda client: self._script(client)(keys=[key], args=args, client=client))
        return RateDecision.from_script(result, limit)

    def count(self, key: str, *, window_seconds: int, now_ms: int | None = None) -> int:
        def read(client) -> int:
            now = now_ms if now_ms is not None else _server_ms(client)
            return client.zcount(key, now - window_seconds * 1000 + 1, "+inf")

        return int(redis_gate.run(read))

    def reset(self, *keys: str) -> None:
        if keys:
            redis_gate.run(lambda client: client.delete(*keys))


def _server_ms(client) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


class LocalRateLimiter(RateLimiter):
    """The same sliding log in process memory: exact for one worker."""

    SWEEP_EVERY = 10_000  # hits between sweeps of logs nobody touched again (bounded memory under key spraying)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[str, deque[int]] = {}
        self._hits = 0

    def _sweep(self, now: int, window: int) -> None:
        for key in [key for key, log in self._logs.items() if not log or log[-1] <= now - window]:
            del self._logs[key]

    def hit(self, key: str, *, limit: int, window_seconds: int, now_ms: int | None = None) -> RateDecision:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        window = window_seconds * 1000
        with self._lock:
            self._hits += 1
            if self._hits % self.SWEEP_EVERY == 0:
                self._sweep(now, window)
            log = self._logs.setdefault(key, deque())
            while log and log[0] <= now - window:
                log.popleft()
            allowed = 0 < limit and len(log) < limit
            if allowed:
                log.append(now)
            reset_ms = (log[0] + window - now) if log else window
            if not log:
                del self._logs[key]
            return RateDecision(allowed, limit, max(0, limit - len(log)), max(0, math.ceil(reset_ms / 1000)))

    def count(self, key: str, *, window_seconds: int, now_ms: int | None = None) -> int:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        with self._lock:
            return sum(1 for moment in self._logs.get(key, ()) if moment > now - window_seconds * 1000)

    def reset(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._logs.pop(key, None)


redis_limiter = RedisRateLimiter()
local_limiter = LocalRateLimiter()


def rate_limit_hit(key: str, *, limit: int, window_seconds: int = 60) -> RateDecision:
    """Check and record one request: in Redis, or per process while Redis is off or down (same rates)."""
    try:
        return redis_limiter.hit(key, limit=limit, window_seconds=window_seconds)
    except RedisUnavailable:
        return local_limiter.hit(key, limit=limit, window_seconds=window_seconds)


def rate_limit_count(key: str, *, window_seconds: int = 60) -> int:
    """Requests logged for `key` in the current window (Redis, or this process's log)."""
    try:
        return redis_limiter.count(key, window_seconds=window_seconds)
    except RedisUnavailable:
        return local_limiter.count(key, window_seconds=window_seconds)


def rate_limit_reset(*keys: str) -> None:
    """Forget the logged requests of these keys everywhere this process can reach."""
    local_limiter.reset(*keys)
    try:
        redis_limiter.reset(*keys)
    except RedisUnavailable:
        pass


def user_rate_key(user_id: int) -> str:
    """The request log of a user (shares the user's hash tag with its revocation keys)."""
    return f"rs:{{u:{user_id}}}:rl:requests"


def ip_rate_key(ip: str, scope: str) -> str:
    """The request log of a client IP on an anonymous endpoint group."""
    return f"rs:{{ip:{ip}}}:rl:{scope}"
