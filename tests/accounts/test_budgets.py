"""Usage budgets (budget_consume / budget_used): one contract every backend passes — Redis, local mode, Redis down."""

import random
import threading
from datetime import UTC, datetime

import pytest
from django_redis import get_redis_connection

from accounts import budgets
from accounts.budgets import LocalBudgets, budget_consume, budget_key, budget_used
from ragsecure.redis_gate import redis_configured, redis_gate
from ragsecure.settings.base import cache_settings
from tests.threads import run_threads

HOUR = 3600
DAY = 86400
DEAD_REDIS = "redis://127.0.0.1:1/0"


def at(*fields, second: float = 0.0) -> float:
    """A UTC instant as epoch seconds: at(2030, 1, 1, 12, 0, second=30.5)."""
    return datetime(*fields, tzinfo=UTC).timestamp() + second


NOON = at(2030, 1, 1, 12, 0)


def clock(now: float):
    return lambda: now


def consume(amount: int, *, limit: int = 100, now: float = NOON, user_id: int = 7, kind: str = "retrieved_bytes", window: int = HOUR):
    return budget_consume(user_id=user_id, kind=kind, amount=amount, limit=limit, window_seconds=window, clock=clock(now))


def used(*, now: float = NOON, user_id: int = 7, kind: str = "retrieved_bytes", window: int = HOUR) -> int:
    return budget_used(user_id=user_id, kind=kind, window_seconds=window, clock=clock(now))


class BudgetContract:
    """What every budget backend guarantees; subclasses choose the backend with an autouse `backend` fixture."""

    def test_allows_up_to_the_limit_exactly_then_denies(self):
        decisions = [consume(40), consume(40), consume(20)]

        assert [decision.allowed for decision in decisions] == [True, True, True]
        assert [decision.used for decision in decisions] == [40, 80, 100]
        assert decisions[-1].remaining == 0 and decisions[-1].limit == 100
        refused = consume(1)
        assert not refused.allowed
        assert refused.used == 100 and refused.limit == 100
        assert used() == 100

    def test_a_denied_request_is_not_charged(self):
        assert consume(60).allowed
        assert not consume(50).allowed
        assert used() == 60
        assert consume(40).allowed
        assert used() == 100

    def test_one_amount_over_the_limit_is_denied_and_not_charged(self):
        decision = consume(101)

        assert not decision.allowed
        assert used() == 0
        assert consume(100).allowed

    @pytest.mark.parametrize("amount", [0, 1, 50])
    def test_limit_zero_denies_everything(self, amount):
        decision = consume(amount, limit=0)

        assert not decision.allowed
        assert decision.remaining == 0
        assert decision.retry_after > 0
        assert used() == 0

    def test_zero_amount_is_allowed_within_the_limit(self):
        assert consume(0).allowed
        assert consume(100).allowed
        assert consume(0).allowed
        assert used() == 100

    def test_users_and_kinds_have_separate_budgets(self):
        assert consume(100, user_id=1).allowed
        assert not consume(1, user_id=1).allowed

        assert consume(100, user_id=2).allowed
        assert consume(100, user_id=1, kind="llm_tokens").allowed
        assert used(user_id=1) == 100 and used(user_id=2) == 100 and used(user_id=1, kind="llm_tokens") == 100

    def test_hour_windows_are_aligned_to_utc_hours(self):
        assert consume(100, now=at(2030, 1, 1, 12, 0)).allowed
        # Same UTC hour, however late in it: still spent.
        assert not consume(1, now=at(2030, 1, 1, 12, 59, second=59.999)).allowed
        # The next UTC hour starts afresh (not 3600 s after the first use).
        assert consume(100, now=at(2030, 1, 1, 13, 0)).allowed
        assert used(now=at(2030, 1, 1, 13, 30)) == 100

    def test_a_window_is_the_clock_hour_not_an_hour_since_first_use(self):
        assert consume(100, now=at(2030, 1, 1, 12, 50)).allowed

        assert consume(100, now=at(2030, 1, 1, 13, 5)).allowed
        assert not consume(1, now=at(2030, 1, 1, 13, 55)).allowed

    def test_day_windows_reset_at_utc_midnight(self):
        assert consume(100, window=DAY, now=at(2030, 1, 1, 0, 0)).allowed
        assert not consume(1, window=DAY, now=at(2030, 1, 1, 23, 59, second=59)).allowed
        assert consume(100, window=DAY, now=at(2030, 1, 2, 0, 0)).allowed
        assert used(window=DAY, now=at(2030, 1, 2, 12, 0)) == 100

    def test_a_new_window_reports_nothing_used(self):
        assert consume(70).allowed

        assert used(now=NOON + HOUR) == 0
        assert used(now=NOON - 1) == 0
        assert used(now=NOON + HOUR - 1) == 70

    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (at(2030, 1, 1, 12, 0), 3600),
            (at(2030, 1, 1, 12, 15), 2700),
            (at(2030, 1, 1, 12, 15, second=0.25), 2700),
            (at(2030, 1, 1, 12, 59, second=59), 1),
            (at(2030, 1, 1, 12, 59, second=59.9), 1),
        ],
    )
    def test_retry_after_is_the_seconds_left_in_the_window(self, now, expected):
        allowed = consume(100, now=now)
        refused = consume(1, now=now)

        assert allowed.allowed and not refused.allowed
        assert refused.retry_after == expected
        assert allowed.retry_after == expected
        assert isinstance(refused.retry_after, int)

    def test_concurrent_unit_consumers_use_the_budget_exactly(self):
        limit, threads, attempts = 777, 20, 100
        allowed = [0] * threads
        start = threading.Barrier(threads)

        def worker(index: int) -> None:
            start.wait()
            for _ in range(attempts):
                if consume(1, limit=limit, user_id=99).allowed:
                    allowed[index] += 1

        run_threads(worker, threads)

        assert sum(allowed) == limit
        assert used(user_id=99) == limit

    def test_concurrent_consumers_of_mixed_amounts_never_overspend(self):
        limit, threads, attempts = 1000, 20, 50
        allowed_amounts: list[list[int]] = [[] for _ in range(threads)]
        start = threading.Barrier(threads)

        def worker(index: int) -> None:
            amounts = random.Random(index).choices(range(1, 10), k=attempts)
            start.wait()
            for amount in amounts:
                if consume(amount, limit=limit, user_id=98).allowed:
                    allowed_amounts[index].append(amount)

        run_threads(worker, threads)

        total = sum(map(sum, allowed_amounts))
        # Demand (~5000) far exceeds the limit: it is filled to within one request's amount, never beyond.
        assert limit - 9 < total <= limit
        assert used(user_id=98) == total




@pytest.mark.redis
class TestRedisBudgets(BudgetContract):
    """The normal path: one Lua script per consume, shared by every worker."""

    @pytest.fixture(autouse=True)
    def backend(self, monkeypatch):
        assert redis_configured()
        # Any fallback to in-process state would show up here instead of in Redis.
        monkeypatch.setattr(budgets, "_local", LocalBudgets())
        yield
        assert not redis_gate.is_down()
        assert budgets._local._totals == {}

    def test_state_lives_in_redis_and_expires_after_the_window(self):
        now = datetime.now(UTC).timestamp()
        decision = budget_consume(user_id=5, kind="retrieved_bytes", amount=42, limit=100, window_seconds=HOUR, clock=clock(now))

        key = budget_key(user_id=5, kind="retrieved_bytes", window_index=int(now // HOUR))
        redis = get_redis_connection("default")
        assert decision.allowed
        assert int(redis.get(key)) == 42
        assert 0 < redis.pttl(key) <= (HOUR + 60) * 1000

    def test_another_process_sees_the_same_budget(self, monkeypatch):
        assert consume(60).allowed
        # A second worker has its own in-process state; the Redis budget is still shared.
        monkeypatch.setattr(budgets, "_local", LocalBudgets())

        assert not consume(50).allowed
        assert used() == 60


class TestLocalModeBudgets(BudgetContract):
    """Local mode (REDIS_URL empty): in-process state, exact for one worker."""

    @pytest.fixture(autouse=True)
    def backend(self, settings, monkeypatch):
        settings.REDIS_URL = ""
        settings.CACHES = cache_settings("")
        redis_gate.reset()
        monkeypatch.setattr(budgets, "_local", LocalBudgets())
        assert not redis_configured()
        yield
        redis_gate.reset()


class TestBudgetsWhileRedisIsDown(BudgetContract):
    """Redis configured but not answering: the in-process fallback, never an exception."""

    @pytest.fixture(autouse=True)
    def backend(self, settings, monkeypatch):
        settings.REDIS_URL = DEAD_REDIS
        settings.CACHES = cache_settings(DEAD_REDIS)
        redis_gate.reset()
        monkeypatch.setattr(budgets, "_local", LocalBudgets())
        assert redis_configured()
        yield
        redis_gate.reset()
