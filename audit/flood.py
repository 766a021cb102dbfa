"""Flood summaries: anonymous requests that a per-IP limiter rejects are counted per IP and minute in Redis,
and written as one entry per IP per minute with the count, so a flood cannot fill the database.

Without Redis every rejected request is written individually (nothing is lost).
"""

import time
from datetime import UTC, datetime

from ragsecure.redis_gate import RedisUnavailable, redis_gate

KEY_TTL_SECONDS = 24 * 3600
# Every counter of a flood minute is listed here (scored by its minute), so taking the ended minutes reads this
# index instead of scanning the whole keyspace (rate-limit logs included) at every checkpoint.
DUE_INDEX = "rs:audit-flood:due"


def _key(ip: str, scope: str, minute: int) -> str:
    return f"rs:{{ip:{ip}}}:audit-flood:{scope}:{minute}"


def flood_count(*, ip: str, scope: str, now: float | None = None) -> bool:
    """Count one rejected request toward its IP's minute summary; False when Redis cannot count it (write it instead)."""
    return _add(ip, scope, int((now if now is not None else time.time()) // 60), 1)


def _add(ip: str, scope: str, minute: int, amount: int) -> bool:
    """Add `amount` to an IP's minute counter and list the minute as due; False when Redis cannot take it."""
    key = _key(ip, scope, minute)

    def add(client) -> None:
        # One round trip; not a transaction, because the index and the counter live in different hash slots.
        pipe = client.pipeline(transaction=False)
        pipe.incrby(key, amount)
        pipe.expire(key, KEY_TTL_SECONDS)
        pipe.zadd(DUE_INDEX, {key: minute}, nx=True)
        pipe.expire(DUE_INDEX, KEY_TTL_SECONDS)
        pipe.execute()

    try:
        redis_gate.run(add)
    except RedisUnavailable:
        return False
    return True


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
            scope, _, minute = rest.rpartition(":")
            if not minute.isdigit():
                continue
            summaries.append(
                {
                    "ip": tag.removeprefix("rs:{ip:"),
                    "scope": scope,
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
    return _add(summary["ip"], summary["scope"], summary["minute_number"], summary["count"])
