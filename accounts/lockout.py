"""Login lockout: failures per (username, client IP) earn a growing cool-off; a slower per-username limit
across all IPs stops distributed guessing, while IPs the user recently signed in from are not held off.

Checking and recording are one budget: an attempt takes an in-flight slot before its password is checked, and
only as many attempts as failures are left may be in flight, so parallel guesses never check more passwords
than the budget. The same answer whether or not the username exists: keys are derived from the name as typed.
"""

import hashlib
import threading
import time
from dataclasses import dataclass

from ragsecure.conf import ragsecure_settings
from ragsecure.redis_gate import redis_configured, redis_gate

# KEYS: 1 lock (this name from this IP), 2 per-name failures across IPs, 3 known IPs of this name,
# 4 failures of this name from this IP, 5 attempts in flight for it.
# ARGV: 1 ip digest, 2 global failure limit, 3 free failures, 4 in-flight lease s. Returns {locked, retry_after_seconds};
# when not locked, the attempt holds an in-flight slot until its outcome is recorded (or the lease ends).
_BEGIN_LUA = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  return {1, math.ceil(ttl / 1000)}
end
local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if failures >= tonumber(ARGV[2]) and redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then
  return {1, math.max(1, math.ceil(redis.call('PTTL', KEYS[2]) / 1000))}
end
local mine = tonumber(redis.call('GET', KEYS[4]) or '0')
local allowed = math.max(1, tonumber(ARGV[3]) - mine)
if tonumber(redis.call('GET', KEYS[5]) or '0') >= allowed then
  return {1, 1}
end
redis.call('INCR', KEYS[5])
redis.call('EXPIRE', KEYS[5], ARGV[4])
return {0, 0}
"""
# KEYS: 1 attempts in flight. Frees one slot (never below zero).
_RELEASE_LUA = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
"""
# KEYS: 1 lock, 2 per-name failures across IPs, 3 failures of this name from this IP, 4 attempts in flight.
# ARGV: 1 free failures, 2 base cool-off s, 3 max cool-off s, 4 per-IP window s, 5 global window s.
_FAIL_LUA = """
if tonumber(redis.call('GET', KEYS[4]) or '0') > 0 then
  redis.call('DECR', KEYS[4])
end
local mine = redis.call('INCR', KEYS[3])
if mine == 1 then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
local all = redis.call('INCR', KEYS[2])
if all == 1 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
local over = mine - tonumber(ARGV[1]) + 1
if over > 0 then
  local cooloff = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) * 2 ^ (over - 1))
  redis.call('SET', KEYS[1], '1', 'EX', math.floor(cooloff))
  return math.floor(cooloff)
end
return 0
"""


@dataclass(frozen=True)
class LockoutDecision:
    locked: bool
    retry_after: int


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", errors="replace")).hexdigest()[:32]


def _keys(username: str, ip: str) -> dict[str, str]:
    tag = f"rs:{{login:{_digest(username.casefold())}}}"
    ip_digest = _digest(ip)
    return {
        "lock": f"{tag}:lock:{ip_digest}",
        "failures": f"{tag}:failures",
        "mine": f"{tag}:failures:{ip_digest}",
        "inflight": f"{tag}:inflight:{ip_digest}",
        "known": f"{tag}:known",
        "ip": ip_digest,
    }


# How long an attempt's in-flight slot outlives a worker that died before recording its outcome.
INFLIGHT_LEASE_SECONDS = 30
_scripts: dict[tuple[int, str], object] = {}


def _script(client, source: str):
    key = (id(client), source)
    if key not in _scripts:
        _scripts[key] = client.register_script(source)
    return _scripts[key]


class _LocalLockout:
    """The same rules in process memory, for local mode (no Redis configured; one worker)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expiring: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)
        self.known: dict[str, set[str]] = {}

    def _get(self, key: str, now: float) -> tuple[int, float]:
        value, expires = self.expiring.get(key, (0, 0.0))
        return (value, expires) if expires > now else (0, 0.0)

    def begin(self, keys: dict, config: dict) -> LockoutDecision:
        now = time.monotonic()
        with self.lock:
            locked, until = self._get(keys["lock"], now)
            if locked:
                return LockoutDecision(True, max(1, int(until - now + 0.999)))
            failures, until = self._get(keys["failures"], now)
            if failures >= config["GLOBAL_FAILURES"] and keys["ip"] not in self.known.get(keys["known"], set()):
                return LockoutDecision(True, max(1, int(until - now + 0.999)))
            mine, _ = self._get(keys["mine"], now)
            inflight, _ = self._get(keys["inflight"], now)
            if inflight >= max(1, config["FREE_FAILURES"] - mine):
                return LockoutDecision(True, 1)
            self.expiring[keys["inflight"]] = (inflight + 1, now + INFLIGHT_LEASE_SECONDS)
        return LockoutDecision(False, 0)

    def _release(self, keys: dict, now: float) -> None:
        inflight, until = self._get(keys["inflight"], now)
        if inflight > 1:
            self.expiring[keys["inflight"]] = (inflight - 1, until)
        else:
            self.expiring.pop(keys["inflight"], None)

    def release(self, keys: dict) -> None:
        with self.lock:
            self._release(keys, time.monotonic())

    def fail(self, keys: dict, config: dict) -> int:
        now = time.monotonic()
        with self.lock:
            self._release(keys, now)
            if len(self.expiring) > 10_000:  # bounded memory under username/IP spraying
                for key in [key for key, (_, expires) in self.expiring.items() if expires <= now]:
                    del self.expiring[key]
            mine, until = self._get(keys["mine"], now)
            self.expiring[keys["mine"]] = (mine + 1, until or now + config["WINDOW"])
            every, until = self._get(keys["failures"], now)
            self.expiring[keys["failures"]] = (every + 1, until or now + config["GLOBAL_WINDOW"])
            over = mine + 2 - config["FREE_FAILURES"]
            if over <= 0:
                return 0
            cooloff = int(min(config["MAX_COOLOFF"], config["BASE_COOLOFF"] * 2 ** (over - 1)))
            self.expiring[keys["lock"]] = (1, now + cooloff)
            return cooloff

    def succeed(self, keys: dict) -> None:
        with self.lock:
            self._release(keys, time.monotonic())
            self.expiring.pop(keys["mine"], None)
            self.expiring.pop(keys["lock"], None)
            self.known.setdefault(keys["known"], set()).add(keys["ip"])


_local = _LocalLockout()


def login_attempt_begin(*, username: str, ip: str) -> LockoutDecision:
    """Whether a sign-in attempt for this name from this IP is held off now; when it is not, it takes an in-flight slot,
    which login_failure_record, login_success_record or login_attempt_release gives back.

    Raises RedisUnavailable when Redis is configured but down (the caller fails closed).
    """
    keys = _keys(username, ip)
    config = ragsecure_settings.LOGIN_LOCKOUT
    if not redis_configured():
        return _local.begin(keys, config)
    args = [keys["ip"], config["GLOBAL_FAILURES"], config["FREE_FAILURES"], INFLIGHT_LEASE_SECONDS]
    locked, retry_after = redis_gate.run(
        lambda client: _script(client, _BEGIN_LUA)(
            keys=[keys["lock"], keys["failures"], keys["known"], keys["mine"], keys["inflight"]], args=args, client=client
        )
    )
    return LockoutDecision(bool(locked), int(retry_after))


def login_attempt_release(*, username: str, ip: str) -> None:
    """Give back an attempt's in-flight slot without an outcome (the attempt failed for another reason)."""
    keys = _keys(username, ip)
    if not redis_configured():
        _local.release(keys)
        return
    redis_gate.run(lambda client: _script(client, _RELEASE_LUA)(keys=[keys["inflight"]], args=[], client=client))


def login_failure_record(*, username: str, ip: str) -> int:
    """Count a failed sign-in; returns the cool-off (seconds) it started, 0 for none."""
    keys = _keys(username, ip)
    config = ragsecure_settings.LOGIN_LOCKOUT
    if not redis_configured():
        return _local.fail(keys, config)
    args = [config["FREE_FAILURES"], config["BASE_COOLOFF"], config["MAX_COOLOFF"], config["WINDOW"], config["GLOBAL_WINDOW"]]
    return int(
        redis_gate.run(
            lambda client: _script(client, _FAIL_LUA)(
                keys=[keys["lock"], keys["failures"], keys["mine"], keys["inflight"]], args=args, client=client
            )
        )
    )


def login_success_record(*, username: str, ip: str) -> None:
    """A successful sign-in clears this IP's failures and marks it known for the name."""
    keys = _keys(username, ip)
    if not redis_configured():
        _local.succeed(keys)
        return

    def apply(client) -> None:
        _script(client, _RELEASE_LUA)(keys=[keys["inflight"]], args=[], client=client)
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys["mine"], keys["lock"])
        pipe.sadd(keys["known"], keys["ip"])
        pipe.expire(keys["known"], int(ragsecure_settings.LOGIN_LOCKOUT["KNOWN_IP_DAYS"]) * 86400)
        pipe.execute()

    redis_gate.run(apply)


def login_lockout_reset(*, username: str) -> None:
    """Operator reset: forget the name's failures and cool-offs from every IP."""
    tag = f"rs:{{login:{_digest(username.casefold())}}}"
    if not redis_configured():
        with _local.lock:
            for key in [key for key in _local.expiring if key.startswith(tag)]:
                del _local.expiring[key]
        return

    def apply(client) -> None:
        doomed = [key for key in client.scan_iter(match=f"{tag}:*", count=500) if not key.endswith(b":known")]
        if doomed:
            client.delete(*doomed)

    redis_gate.run(apply)
