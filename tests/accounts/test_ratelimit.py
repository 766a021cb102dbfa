"""The request rate limiter: one contract every backend passes (Redis Lua sliding log, in-process log), then Redis specifics."""

import hashlib
import random
import re
import subprocess
import tempfile
import threading
import time

import pytest
from django_redis import get_redis_connection
from redis.crc import key_slot

from accounts import ratelimit, revocation
from accounts.ratelimit import (
    SLIDING_LOG_LUA,
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    ip_rate_key,
    rate_limit_count,
    rate_limit_hit,
    user_rate_key,
)
from ragsecure.redis_gate import redis_configured, redis_gate
from ragsecure.settings.base import cache_settings
from tests.services import _answers, start_redis_server
from tests.threads import run_threads

WINDOW = 60
WINDOW_MS = WINDOW * 1000
T0 = 1_900_000_000_000  # an epoch instant in ms; the limiter is told the time, never sleeps
KEY = "rs:{u:4242}:rlog"


def replay_violations(admitted: list[int], limit: int) -> list[int]:
    """Admitted instants at which the rolling window (t - 60 s, t] held more than `limit` admitted requests."""
    ordered = sorted(admitted)
    violations, start = [], 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - WINDOW_MS:
            start += 1
        if end - start + 1 > limit:
            violations.append(moment)
    return violations


def patient_cache_settings(url: str) -> dict:
    """The product's cache settings with socket timeouts that survive a loaded test machine (60 threads on few CPUs):
    these tests are about counting, not about how fast a dead Redis is detected. The timeouts go in the URL, which
    overrides the OPTIONS and, being a different URL, gets its own connection pool in django-redis."""
    if not url:
        return cache_settings("")
    separator = "&" if "?" in url else "?"
    return cache_settings(f"{url}{separator}socket_timeout=2&socket_connect_timeout=2")




class RateLimiterContract:
    """What every limiter backend guarantees; subclasses provide the `limiter` fixture."""

    limiter: RateLimiter

    def hit(self, at_ms: int, *, limit: int = 5, key: str = KEY):
        return self.limiter.hit(key, limit=limit, window_seconds=WINDOW, now_ms=at_ms)

    def count(self, at_ms: int, *, key: str = KEY) -> int:
        return self.limiter.count(key, window_seconds=WINDOW, now_ms=at_ms)

    # --- admission -----------------------------------------------------------------------

    def test_admits_exactly_the_limit_then_denies(self):
        decisions = [self.hit(T0 + second * 1000) for second in range(5)]

        assert [decision.allowed for decision in decisions] == [True] * 5
        assert [decision.remaining for decision in decisions] == [4, 3, 2, 1, 0]
        assert all(decision.limit == 5 for decision in decisions)
        denied = self.hit(T0 + 10_000)
        assert not denied.allowed
        assert denied.remaining == 0 and denied.limit == 5
        # The oldest request (T0) leaves the window at T0 + 60 s: 50 s from now.
        assert denied.reset_seconds == 50
        assert denied.retry_after == 50
        assert self.count(T0 + 10_000) == 5

    def test_first_request_resets_a_full_window_later(self):
        decision = self.hit(T0)

        assert decision.allowed and decision.remaining == 4
        assert decision.reset_seconds == WINDOW

    def test_reset_counts_from_the_oldest_request_still_in_the_window(self):
        self.hit(T0)
        self.hit(T0 + 20_000)
        decision = self.hit(T0 + 45_000)

        assert decision.reset_seconds == 15  # T0 leaves at T0 + 60 s
        later = self.hit(T0 + 61_000)  # T0 has left; T0 + 20 s is now the oldest
        assert later.allowed
        assert later.reset_seconds == 19

    @pytest.mark.parametrize(("elapsed_ms", "expected"), [(10_000, 50), (10_001, 50), (10_999, 50), (59_000, 1), (59_999, 1)])
    def test_retry_after_rounds_the_wait_up_to_whole_seconds(self, elapsed_ms, expected):
        for _ in range(5):
            assert self.hit(T0).allowed

        denied = self.hit(T0 + elapsed_ms)

        assert not denied.allowed
        assert denied.reset_seconds == expected
        assert denied.retry_after == expected >= 1

    @pytest.mark.parametrize("attempts", [1, 3])
    def test_limit_zero_denies_everything(self, attempts):
        decisions = [self.hit(T0 + index, limit=0) for index in range(attempts)]

        assert not any(decision.allowed for decision in decisions)
        assert all(decision.remaining == 0 and decision.limit == 0 for decision in decisions)
        assert all(decision.retry_after >= 1 for decision in decisions)
        assert self.count(T0 + attempts) == 0

    def test_limit_lowered_below_the_logged_requests_denies(self):
        for second in range(5):
            assert self.hit(T0 + second * 1000, limit=5).allowed

        lowered = self.hit(T0 + 6000, limit=3)

        assert not lowered.allowed and lowered.remaining == 0 and lowered.limit == 3
        raised = self.hit(T0 + 7000, limit=10)
        assert raised.allowed and raised.remaining == 4

    def test_admitted_again_exactly_when_the_oldest_request_leaves(self):
        for offset in (0, 1000, 2000):
            assert self.hit(T0 + offset, limit=3).allowed

        just_before = self.hit(T0 + WINDOW_MS - 1, limit=3)
        exactly = self.hit(T0 + WINDOW_MS, limit=3)
        next_one = self.hit(T0 + WINDOW_MS + 1, limit=3)

        assert not just_before.allowed and just_before.reset_seconds == 1
        assert exactly.allowed and exactly.remaining == 0
        # Full again: T0 + 1 s is now the oldest and leaves at T0 + 61 s.
        assert not next_one.allowed and next_one.reset_seconds == 1
        assert self.hit(T0 + WINDOW_MS + 1000, limit=3).allowed

    def test_denied_requests_are_not_logged(self):
        for offset in (0, 1000, 2000):
            assert self.hit(T0 + offset, limit=3).allowed
        # Hammering while denied must not extend the wait.
        for offset in range(3000, 59_000, 500):
            assert not self.hit(T0 + offset, limit=3).allowed

        assert self.count(T0 + 59_000) == 3
        assert self.hit(T0 + WINDOW_MS, limit=3).allowed

    # --- no edge burst ---------------------------------------------------------------------

    def test_no_burst_at_a_window_edge(self):
        # The whole limit just before the minute boundary...
        for offset in range(5):
            assert self.hit(T0 + 59_900 + offset, limit=5).allowed
        # ...gives nothing just after it (a fixed per-minute window would admit 5 more here).
        after_edge = [self.hit(T0 + 60_100 + offset, limit=5) for offset in range(5)]

        assert not any(decision.allowed for decision in after_edge)
        assert after_edge[0].reset_seconds == 60  # 59.8 s until T0 + 59.9 s leaves
        assert not self.hit(T0 + 119_899, limit=5).allowed
        assert self.hit(T0 + 119_900, limit=5).allowed

    def test_straddling_traffic_never_exceeds_the_limit_in_any_rolling_window(self):
        limit, admitted = 10, []
        # Bursts straddling each minute boundary plus steady trickle, over five minutes.
        moments = sorted(
            [T0 + minute * WINDOW_MS + edge for minute in range(1, 6) for edge in range(-200, 200, 20)]
            + list(range(T0, T0 + 5 * WINDOW_MS, 1700))
        )
        for moment in moments:
            if self.hit(moment, limit=limit).allowed:
                admitted.append(moment)

        assert replay_violations(admitted, limit) == []
        assert len(admitted) >= 5 * limit  # and the limit is actually reached, window after window

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_random_traffic_matches_an_exact_sliding_window(self, seed):
        generator = random.Random(seed)
        limit, moment, admitted = 7, T0, []
        for _ in range(600):
            moment += generator.choice([0, 1, 5, 50, 400, 3000, 9000, 29_999, 30_000])
            decision = self.hit(moment, limit=limit)
            in_window = sum(1 for earlier in admitted if earlier > moment - WINDOW_MS)
            # Exact: admitted if and only if fewer than `limit` requests are in the rolling window.
            assert decision.allowed == (in_window < limit), (moment - T0, in_window)
            if decision.allowed:
                admitted.append(moment)
                assert decision.remaining == limit - in_window - 1
            else:
                assert decision.remaining == 0
                oldest = min(earlier for earlier in admitted if earlier > moment - WINDOW_MS)
                assert decision.reset_seconds == -(-(oldest + WINDOW_MS - moment) // 1000)

        assert replay_violations(admitted, limit) == []

    # --- reset and count ------------------------------------------------------------------------

    def test_reset_forgets_the_log(self):
        for second in range(5):
            self.hit(T0 + second * 1000)
        assert not self.hit(T0 + 6000).allowed

        self.limiter.reset(KEY)

        assert self.count(T0 + 6000) == 0
        decisions = [self.hit(T0 + 7000) for _ in range(5)]
        assert all(decision.allowed for decision in decisions)
        assert decisions[0].remaining == 4
        assert not self.hit(T0 + 7000).allowed

    def test_reset_of_several_keys_and_of_unknown_keys(self):
        other = "rs:{u:4243}:rlog"
        self.hit(T0)
        self.hit(T0, key=other)

        self.limiter.reset(KEY, other, "rs:{u:999999}:rlog")
        self.limiter.reset()

        assert self.count(T0) == 0 and self.count(T0, key=other) == 0

    def test_count_is_what_the_window_holds_and_records_nothing(self):
        for offset in (0, 10_000, 20_000):
            self.hit(T0 + offset)

        assert self.count(T0 + 20_000) == 3
        assert self.count(T0 + 20_000) == 3
        assert self.count(T0 + WINDOW_MS - 1) == 3
        assert self.count(T0 + WINDOW_MS) == 2
        assert self.count(T0 + WINDOW_MS + 10_000) == 1
        assert self.count(T0 + WINDOW_MS + 20_000) == 0
        assert self.count(T0, key="rs:{u:31337}:rlog") == 0

    def test_keys_are_independent(self):
        for _ in range(5):
            assert self.hit(T0).allowed
        assert not self.hit(T0).allowed

        other = self.hit(T0, key="rs:{u:4243}:rlog")

        assert other.allowed and other.remaining == 4
        assert self.count(T0) == 5

    # --- concurrency ---------------------------------------------------------------------------

    def test_concurrent_users_get_exactly_the_limit_never_one_more(self):
        limit, users, threads_per_user, attempts = 23, 3, 20, 4
        keys = [user_rate_key(9000 + user) for user in range(users)]
        allowed = {key: 0 for key in keys}
        tally = threading.Lock()
        start = threading.Barrier(users * threads_per_user)

        def worker(index: int) -> None:
            key = keys[index % users]
            start.wait()
            for attempt in range(attempts):
                decision = self.limiter.hit(key, limit=limit, window_seconds=WINDOW, now_ms=T0 + attempt)
                if decision.allowed:
                    with tally:
                        allowed[key] += 1

        run_threads(worker, users * threads_per_user)

        assert allowed == {key: limit for key in keys}
        assert [self.count(T0 + 10, key=key) for key in keys] == [limit] * users


class TestLocalRateLimiter(RateLimiterContract):
    """The in-process log (local mode and the Redis-down fallback)."""

    @pytest.fixture(autouse=True)
    def limiter_backend(self):
        self.limiter = LocalRateLimiter()


@pytest.mark.redis
class TestRedisRateLimiter(RateLimiterContract):
    """The Lua sliding log on the configured Redis."""

    @pytest.fixture(autouse=True)
    def limiter_backend(self, settings):
        assert redis_configured()
        settings.CACHES = patient_cache_settings(settings.REDIS_URL)
        self.limiter = RedisRateLimiter()
        yield
        # Any fallback would have raised RedisUnavailable; the breaker stayed closed throughout.
        assert not redis_gate.is_down()

    def test_the_log_lives_in_redis_with_a_ttl_of_at_most_two_windows(self):
        self.hit(T0)
        self.hit(T0 + 1000)

        redis = get_redis_connection("default")
        assert redis.llen(KEY) == 2
        assert WINDOW_MS < redis.pttl(KEY) <= 2 * WINDOW_MS

    def test_the_ttl_is_renewed_when_the_oldest_entry_leaves(self):
        """The TTL is set when the log starts and renewed whenever its head moves, which keeps the key alive at least a
        window past its newest entry (a push without a head move is within a window of the last renewal)."""
        redis = get_redis_connection("default")
        self.hit(T0)
        redis.pexpire(KEY, 5_000)  # as if most of the TTL had run out
        self.hit(T0 + 1000)
        assert redis.pttl(KEY) <= 5_000  # the head did not move: no renewal
        self.hit(T0 + WINDOW_MS + 1)  # T0 leaves: the head moves
        assert redis.pttl(KEY) > WINDOW_MS

    def test_counting_trims_what_left_the_window_and_renews_the_ttl(self):
        """A count costs O(1) amortised whatever the limit: it drops expired entries instead of scanning the log."""
        redis = get_redis_connection("default")
        for offset in range(0, 40_000, 10_000):
            self.hit(T0 + offset, limit=100)
        redis.pexpire(KEY, 5_000)

        assert self.count(T0 + WINDOW_MS + 15_000) == 2  # T0 and T0 + 10 s have left

        assert redis.llen(KEY) == 2
        assert redis.pttl(KEY) > WINDOW_MS

    def test_a_denied_request_leaves_the_ttl_bounded(self):
        for _ in range(5):
            self.hit(T0)
        assert not self.hit(T0 + 1000).allowed

        assert 0 < get_redis_connection("default").pttl(KEY) <= 2 * WINDOW_MS
        assert get_redis_connection("default").llen(KEY) == 5

    def test_another_process_shares_the_log(self):
        for _ in range(3):
            self.hit(T0)

        second_worker = RedisRateLimiter()

        assert second_worker.hit(KEY, limit=5, window_seconds=WINDOW, now_ms=T0).remaining == 1
        assert self.count(T0) == 4


# ---------------------------------------------------------------------------
# Redis specifics
# ---------------------------------------------------------------------------


@pytest.fixture
def patient_redis(settings):
    settings.CACHES = patient_cache_settings(settings.REDIS_URL)
    redis_gate.reset()


def test_keys_are_shaped_prefix_tag_kind():
    assert user_rate_key(42) == "rs:{u:42}:rlog"
    assert ip_rate_key("203.0.113.9", "auth") == "rs:{ip:203.0.113.9}:rlog:auth"
    assert ip_rate_key("2001:db8::1", "public") == "rs:{ip:2001:db8::1}:rlog:public"


def test_one_users_keys_share_one_hash_slot():
    user_id, jti, family = 42, "a" * 32, "b" * 32
    hot_path_keys = [
        revocation.warm_key(user_id),
        revocation.jti_key(user_id, jti),
        revocation.family_key(user_id, family),
        revocation.state_key(user_id),
        revocation.version_key(user_id),
        user_rate_key(user_id),
    ]

    assert all(re.fullmatch(r"rs:\{u:42\}:[a-z]+(:[0-9a-z]+)*", key) for key in hot_path_keys), hot_path_keys
    assert len({key_slot(key.encode()) for key in hot_path_keys}) == 1
    assert key_slot(user_rate_key(43).encode()) != key_slot(user_rate_key(42).encode())


@pytest.mark.redis
def test_script_is_loaded_once_then_called_by_sha(patient_redis):
    limiter = RedisRateLimiter()
    redis = get_redis_connection("default")
    sha = hashlib.sha1(SLIDING_LOG_LUA.encode()).hexdigest()

    limiter.hit(KEY, limit=5, window_seconds=WINDOW, now_ms=T0)

    assert redis.script_exists(sha) == [True]


@pytest.mark.redis
def test_clock_skew_between_workers_does_not_matter(patient_redis, monkeypatch):
    """With no time given, the Redis backend uses the server's clock, so workers' clocks do not matter."""
    limiter = RedisRateLimiter()
    real_time = time.time
    skews = iter([+3600.0, -3600.0, +86_400.0, -86_400.0])
    # Each call sees a clock hours away from the last, as workers on badly skewed hosts would.
    monkeypatch.setattr(time, "time", lambda: real_time() + next(skews, 0.0))

    first = limiter.hit(KEY, limit=2, window_seconds=WINDOW)
    second = limiter.hit(KEY, limit=2, window_seconds=WINDOW)
    third = limiter.hit(KEY, limit=2, window_seconds=WINDOW)
    logged = limiter.count(KEY, window_seconds=WINDOW)

    monkeypatch.undo()
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert second.remaining == 0
    assert 58 <= third.reset_seconds <= 60
    assert logged == 2


@pytest.mark.redis
def test_public_helpers_count_in_redis(patient_redis, monkeypatch):
    # A fallback to the in-process log would count here instead.
    monkeypatch.setattr(ratelimit, "local_limiter", LocalRateLimiter())

    decisions = [rate_limit_hit(KEY, limit=3) for _ in range(4)]

    assert [decision.allowed for decision in decisions] == [True, True, True, False]
    assert rate_limit_count(KEY) == 3
    assert get_redis_connection("default").llen(KEY) == 3
    assert ratelimit.local_limiter.count(KEY, window_seconds=WINDOW) == 0


# ---------------------------------------------------------------------------
# A private redis-server: script cache flushes, data loss and restarts mid-window
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_redis():
    """A throwaway redis-server this module may flush, restart and inspect (the shared one is left alone)."""
    holder = {}
    holder["process"], holder["url"] = start_redis_server()
    yield holder
    holder["process"].terminate()
    holder["process"].wait(timeout=10)


@pytest.fixture
def on_private_redis(private_redis, settings):
    settings.REDIS_URL = private_redis["url"]
    settings.CACHES = patient_cache_settings(private_redis["url"])
    redis_gate.reset()
    redis = get_redis_connection("default")
    redis.flushdb()
    redis.script_flush()
    redis.config_resetstat()
    yield private_redis
    redis_gate.reset()


def command_calls(redis) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in redis.info("commandstats").items()}


@pytest.mark.redis
def test_one_script_load_then_one_evalsha_per_check(on_private_redis):
    limiter = RedisRateLimiter()
    redis = get_redis_connection("default")

    for offset in range(20):
        limiter.hit(KEY, limit=10, window_seconds=WINDOW, now_ms=T0 + offset)

    calls = command_calls(redis)
    # redis-py tries EVALSHA first: the first one may meet NOSCRIPT and load the script, once.
    loads = calls.get("script|load", 0)
    assert loads <= 1
    assert calls.get("evalsha") == 20 + loads
    assert calls.get("eval", 0) == 0


@pytest.mark.redis
def test_script_cache_flushed_mid_window_is_reloaded_and_the_log_kept(on_private_redis):
    limiter = RedisRateLimiter()
    redis = get_redis_connection("default")
    assert limiter.hit(KEY, limit=3, window_seconds=WINDOW, now_ms=T0).allowed
    assert limiter.hit(KEY, limit=3, window_seconds=WINDOW, now_ms=T0 + 1).allowed

    redis.script_flush()

    third = limiter.hit(KEY, limit=3, window_seconds=WINDOW, now_ms=T0 + 2)
    fourth = limiter.hit(KEY, limit=3, window_seconds=WINDOW, now_ms=T0 + 3)
    assert third.allowed and third.remaining == 0
    assert not fourth.allowed
    assert redis.script_exists(hashlib.sha1(SLIDING_LOG_LUA.encode()).hexdigest()) == [True]


@pytest.mark.redis
def test_data_lost_mid_window_restarts_counting_from_zero(on_private_redis):
    limiter = RedisRateLimiter()
    redis = get_redis_connection("default")
    for offset in range(3):
        assert limiter.hit(KEY, limit=3, window_seconds=WINDOW, now_ms=T0 + offset).allowed
    assert not limiter.hit(KEY, limit=3, window_seconds=WINDOW, now_ms=T0 + 3).allowed

    # What a restart without persistence does: the data and the script cache are gone.
    redis.flushdb()
    redis.script_flush()

    after = [limiter.hit(KEY, limit=3, window_seconds=WINDOW, now_ms=T0 + 10) for _ in range(4)]
    assert [decision.allowed for decision in after] == [True, True, True, False]
    assert after[0].remaining == 2 and after[0].reset_seconds == WINDOW
    assert limiter.count(KEY, window_seconds=WINDOW, now_ms=T0 + 10) == 3


@pytest.mark.redis
def test_redis_restarted_mid_window_keeps_limiting(on_private_redis, monkeypatch):
    """A real restart: at most the request that meets the broken connection falls back; counting then restarts in Redis."""
    monkeypatch.setattr(ratelimit, "local_limiter", LocalRateLimiter())
    url = on_private_redis["url"]
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    for _ in range(3):
        assert rate_limit_hit(KEY, limit=3).allowed
    assert not rate_limit_hit(KEY, limit=3).allowed

    process = on_private_redis["process"]
    process.terminate()
    process.wait(timeout=10)
    on_private_redis["process"] = restart = subprocess.Popen(  # noqa: S603 - fixed arguments
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tempfile.mkdtemp()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _answers(url):
        assert time.monotonic() < deadline, "restarted redis-server did not answer"
        time.sleep(0.05)
    redis_gate.reset()

    after = [rate_limit_hit(KEY, limit=3) for _ in range(5)]

    # Counting restarted from zero in Redis: the limit is admitted again, and no more.
    assert [decision.allowed for decision in after] == [True, True, True, False, False]
    assert after[0].remaining == 2
    assert get_redis_connection("default").llen(KEY) == 3
    assert ratelimit.local_limiter.count(KEY, window_seconds=WINDOW) == 0
    assert restart.poll() is None
