"""Flood summaries: requests alike enough that one full entry says all (per-IP and per-user 429s, failed
authentication, 404 scans, health probes) are counted per client IP, kind and minute in Redis. The first
of a minute keeps its full entry; the others become one summary entry with the count once the minute ends.

Kinds come from a fixed vocabulary (status, error code, action), never from the request's own text, so an
attacker cannot make keys, and so entries, without bound. Without Redis every request is written in full.
"""

import time
from datetime import UTC, datetime

from ragsecure.redis_gate import RedisUnavailable, redis_gate

KEY_TTL_SECONDS = 24 * 3600
# Every counter of a flood minute is listed here (scored by its minute), so taking the ended minutes reads this
# index instead of scanning the whole keyspace (rate-limit logs included) at every checkpoint.
DUE_INDEX = "rs:audit-flood:due"
# Credential attempts (POSTs to these) stay entries of their own: the per-IP sign-in limit and the lockout bound them.
SIGN_IN_ACTIONS = frozenset({"auth.token", "auth.token_refresh", "admin.login"})


def flood_kind(*, status: int, method: str, caller_kind: str, actor_id: int | None, action: str, detail: dict) -> str | None:
    """The kind a request is counted under when it is one of many alike, or None when it keeps a full entry.

    Anonymous requests other than credential attempts (probes, scans, failed authentication, their 429s) are
    counted by status and error code (or action); an authenticated caller's requests keep full entries, except
    the 429s past their tier limit.
    """
    verdict = detail.get("rate_limit")
    limited = status == 429 and isinstance(verdict, dict) and verdict.get("allowed") is False
    if caller_kind in ("jwt", "api_key"):
        if limited and verdict.get("scope") == "user" and actor_id is not None:
            return f"429:user:{actor_id}"
        return None
    if caller_kind != "anonymous":
        return None
    if limited and str(verdict.get("scope", "")).startswith("ip:"):
        return f"429:{verdict['scope']}"
    if status == 429 or (method == "POST" and action in SIGN_IN_ACTIONS):
        return None  # a sign-in attempt, or a 429 for another reason (a lockout), keeps its own entry
    error = detail.get("error")
    return f"{status}:{error if isinstance(error, str) and error.isidentifier() else action}"


def flood_kind_status(kind: str) -> int:
    return int(kind.partition(":")[0])


def flood_kind_user(kind: str) -> int | None:
    """The user a per-user kind counts for (`429:user:<id>`), else None."""
    _, _, rest = kind.partition(":")
    prefix, _, user_id = rest.partition(":")
    return int(user_id) if prefix == "user" and user_id.isdigit() else None


def _key(ip: str, kind: str, minute: int) -> str:
    return f"rs:{{ip:{ip}}}:audit-flood:{kind}:{minute}"


def flood_count(*, ip: str, kind: str, now: float | None = None) -> int | None:
    """Count one request toward its IP's minute of `kind`: how many that minute holds now, or None when Redis cannot count it."""
    return _add(ip, kind, int((now if now is not None else time.time()) // 60), 1)


def _add(ip: str, kind: str, minute: int, amount: int) -> int | None:
    """Add `amount` to an IP's minute counter and list the minute as due; the new count, or None when Redis cannot take it."""
    key = _key(ip, kind, minute)

    def add(client) -> int:
        # One round trip; not a transaction, because the index and the counter live in different hash slots.
        pipe = client.pipeline(transaction=False)
        pipe.incrby(key, amount)
        pipe.expire(key, KEY_TTL_SECONDS)
        pipe.zadd(DUE_INDEX, {key: minute}, nx=True)
        pipe.expire(DUE_INDEX, KEY_TTL_SECONDS)
        return int(pipe.execute()[0])

    try:
        return redis_gate.run(add)
    except RedisUnavailable:
        return None


def floods_due(*, now: float | None = None, limit: int = 1000) -> list[dict]:
    """Take (atomically, once across all processes) the counts of minutes that have ended."""
    current = int((now if now is not None else time.time()) // 60)

    def take(client) -> list[dict]:
        summaries = []
        for raw in client.zrangebyscore(DUE_INDEX, "-inf", current - 1, start=0, num=limit):
            key = raw.decode()
            client.zrem(DUE_INDEX, key)
            count = client.getdel(key)
            if count is None:
                continue  # another process took it (or it expired)
            tag, _, rest = key.partition("}:audit-flood:")
            kind, _, minute = rest.rpartition(":")
            if not minute.isdigit() or not kind.partition(":")[0].isdigit():
                continue
            summaries.append(
                {
                    "ip": tag.removeprefix("rs:{ip:"),
                    "kind": kind,
                    "minute": datetime.fromtimestamp(int(minute) * 60, tz=UTC).isoformat(),
                    "minute_number": int(minute),
                    "count": int(count),
                }
            )
        return summaries

    try:
        return redis_gate.run(take)
    except RedisUnavailable:
        return []


def flood_restore(summary: dict) -> bool:
    """Put a taken summary's count back (its entry could not be written), to be taken again at the next pass."""
    return _add(summary["ip"], summary["kind"], summary["minute_number"], summary["count"]) is not None
