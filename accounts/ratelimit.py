"""The request rate limiter: an exact sliding window (a log of request times), atomic in one Redis round trip.

One interface, two backends: Redis (a Lua script loaded once and called by SHA; the
server's clock, so workers' clock skew does not matter) and in-process (local mode,
and the fallback while Redis is down). Keys are shaped `rs:{<tag>}:<kind>`; every
key one script touches shares the hash tag, so the same code runs on Redis Cluster.
"""

import hashlib
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import NamedTuple

from redis.exceptions import NoScriptError

from ragsecure.redis_gate import RedisUnavailable, redis_gate

# The sliding log, as Lua chunks that scripts splice in (inline: defining functions on every call costs more
# than the commands). The log is a list of request times in arrival order: the head is the oldest, so expired
# entries leave from the head and the newest count is what RPUSH returns. One integer reply and list commands
# keep the script and the client's parsing close to a plain INCR.

# In: `now` (ms, or nil for the Redis server's clock). Out: `now` set.
CLOCK_LUA = """
if not now then
  local t = redis.call('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
"""
# In: `key`, `now`, `window`. Out: `head`, the oldest entry left in the window (or nil). Drops the entries that
# have left the window. The key must outlive its newest entry by a window: a TTL of two windows, renewed whenever
# the head moves or the log starts, does that, since while the head stays every push is within a window of the
# renewal.
TRIM_LUA = """
local head = tonumber(redis.call('LINDEX', key, 0))
if head and head <= now - window then
  repeat
    redis.call('LPOP', key)
    head = tonumber(redis.call('LINDEX', key, 0))
  until not head or head > now - window
  if head then
    redis.call('PEXPIRE', key, 2 * window)
  end
end
"""
# In: `key`, `now`, `window`, `limit`. Out: `decision` = (reset_ms * 2^20 + remaining) * 2 + allowed, where
# reset_ms is the time until the oldest logged request leaves the window.
SLIDE_LUA = CLOCK_LUA + TRIM_LUA + """
local allowed, count = 0, 0
if limit > 0 then
  count = redis.call('RPUSH', key, now)
  if count > limit then
    redis.call('RPOP', key)
    count = count - 1
  else
    allowed = 1
    if count == 1 then
      redis.call('PEXPIRE', key, 2 * window)
    end
  end
elseif head then
  count = redis.call('LLEN', key)
end
local reset = window
if head then
  reset = math.max(0, head + window - now)
end
local decision = (reset * 1048576 + math.max(0, limit - count)) * 2 + allowed
"""
# KEYS[1]: the log. ARGV: now_ms ('' = server time), window_ms, limit.
SLIDING_LOG_LUA = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
""" + SLIDE_LUA + """
return decision
"""
# KEYS[1]: the log. ARGV: now_ms ('' = server time), window_ms. -> requests in the window.
COUNT_LUA = """
local key, now, window = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
""" + CLOCK_LUA + TRIM_LUA + """
return redis.call('LLEN', key)
"""
COUNT_SHA = hashlib.sha1(COUNT_LUA.encode(), usedforsecurity=False).hexdigest()
SLIDING_LOG_SHA = hashlib.sha1(SLIDING_LOG_LUA.encode(), usedforsecurity=False).hexdigest()  # the name Redis gives a script
# The packed reply has 20 bits for `remaining`: larger limits are capped (a million requests per window).
MAX_LIMIT = (1 << 20) - 1


def run_script(client, sha: str, source: str, key_count: int, keys_and_args: tuple):
    """EVALSHA, loading the script once when the server does not have it (first use, restart, SCRIPT FLUSH)."""
    try:
        return client.execute_command("EVALSHA", sha, key_count, *keys_and_args)
    except NoScriptError:
        client.script_load(source)
        return client.execute_command("EVALSHA", sha, key_count, *keys_and_args)


class RateDecision(NamedTuple):
    """The limiter's answer, with what the RateLimit-* headers report (a tuple: built on every request, cheaply)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_seconds)

    @classmethod
    def from_script(cls, packed: int, limit: int) -> "RateDecision":
        """The decision of the slide script's packed reply."""
        return cls(bool(packed & 1), limit, (packed >> 1) & MAX_LIMIT, -(-(packed >> 21) // 1000))


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
    """The sliding log in a Redis list (request times in arrival order), checked and recorded by one script call."""

    def hit(self, key: str, *, limit: int, window_seconds: int, now_ms: int | None = None) -> RateDecision:
        limit = min(limit, MAX_LIMIT)
        args = (key, "" if now_ms is None else now_ms, window_seconds * 1000, limit)
        packed = redis_gate.run(lambda client: run_script(client, SLIDING_LOG_SHA, SLIDING_LOG_LUA, 1, args))
        return RateDecision.from_script(packed, limit)

    def count(self, key: str, *, window_seconds: int, now_ms: int | None = None) -> int:
        args = (key, "" if now_ms is None else now_ms, window_seconds * 1000)
        return int(redis_gate.run(lambda client: run_script(client, COUNT_SHA, COUNT_LUA, 1, args)))

    def reset(self, *keys: str) -> None:
        if keys:
            redis_gate.run(lambda client: client.delete(*keys))


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
    return f"rs:{{u:{user_id}}}:rlog"


def ip_rate_key(ip: str, scope: str) -> str:
    """The request log of a client IP on an anonymous endpoint group."""
    return f"rs:{{ip:{ip}}}:rlog:{scope}"
