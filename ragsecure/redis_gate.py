"""Access to Redis with a per-process circuit breaker: a dead Redis costs one short timeout per retry interval, never a 500."""

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis import Redis
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ragsecure.conf import ragsecure_settings

logger = logging.getLogger("ragsecure.redis")
T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis is configured but does not answer (or is not configured at all)."""


def redis_configured() -> bool:
    """True when this deployment uses Redis (REDIS_URL set); False in local mode."""
    return bool(getattr(settings, "REDIS_URL", "")) and settings.CACHES["default"]["BACKEND"].startswith("django_redis")


_client: Redis | None = None


def redis_client() -> Redis:
    """The shared Redis client of the default cache (its pool and short socket timeouts), looked up once per settings."""
    global _client
    if _client is None:
        from django_redis import get_redis_connection

        _client = get_redis_connection("default")
    return _client


@receiver(setting_changed)
def _forget_client(*, setting: str, **kwargs) -> None:
    global _client
    if setting in ("CACHES", "REDIS_URL"):
        _client = None


class RedisGate:
    """Runs Redis calls; after a failure, fails fast for REDIS_RETRY_INTERVAL seconds and warns once per interval.

    A refused or broken connection opens the breaker at once. A lone read
    timeout does not: on a busy host one slow reply is not an outage, so the
    breaker opens only after TIMEOUTS_BEFORE_DOWN timeouts in a row.
    """

    TIMEOUTS_BEFORE_DOWN = 2

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._down_until = 0.0
        self._last_warning = float("-inf")
        self._timeouts = 0
        self._lock = threading.Lock()

    def run(self, operation: Callable[[Redis], T]) -> T:
        """Return operation(client); raise RedisUnavailable when Redis is off, down or recently failed."""
        if not redis_configured():
            raise RedisUnavailable("Redis is not configured")
        if self._clock() < self._down_until:
            raise RedisUnavailable("Redis recently failed")
        try:
            result = operation(redis_client())
        except RedisTimeoutError as exc:
            with self._lock:
                self._timeouts += 1
                timeouts = self._timeouts
            if timeouts >= self.TIMEOUTS_BEFORE_DOWN:
                self._mark_down(exc)
            raise RedisUnavailable(type(exc).__name__) from None
        except RedisError as exc:
            self._mark_down(exc)
            raise RedisUnavailable(type(exc).__name__) from None
        self._timeouts = 0
        return result

    def available(self, attempts: int = 2) -> bool:
        """True when Redis answers a PING now (trying again once after a slow reply)."""
        for _ in range(attempts):
            try:
                return bool(self.run(lambda client: client.ping()))
            except RedisUnavailable:
                if self.is_down():
                    return False
        return False

    def is_down(self) -> bool:
        """True when Redis is configured and has failed within the retry interval."""
        return redis_configured() and self._clock() < self._down_until

    def reset(self) -> None:
        """Forget past failures (tests, or an operator who knows Redis is back)."""
        with self._lock:
            self._down_until = 0.0
            self._timeouts = 0

    def _mark_down(self, exc: Exception) -> None:
        now = self._clock()
        with self._lock:
            self._timeouts = 0
            self._down_until = now + float(ragsecure_settings.REDIS_RETRY_INTERVAL)
            warn = now - self._last_warning >= float(ragsecure_settings.REDIS_WARNING_INTERVAL)
            if warn:
                self._last_warning = now
        if warn:
            logger.warning(
                "Redis unavailable (%s): falling back to per-process limits and database revocation checks",
                type(exc).__name__,
            )


redis_gate = RedisGate()
