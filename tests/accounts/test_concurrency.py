"""Per-user concurrent-work slots: the same contract in Redis and in process memory."""

import pytest

from accounts import concurrency
from accounts.concurrency import concurrency_slot, local_slots, slots_key
from ragsecure.errors import RateLimited
from ragsecure.redis_gate import RedisUnavailable, redis_gate
from tests.conftest import requires_redis


class SlotsContract:
    def test_up_to_the_limit_then_refused(self):
        with concurrency_slot(user_id=1, kind="uploads", limit=2, lease_seconds=30):
            with concurrency_slot(user_id=1, kind="uploads", limit=2, lease_seconds=30):
                with pytest.raises(RateLimited) as refused:
                    with concurrency_slot(user_id=1, kind="uploads", limit=2, lease_seconds=30):
                        pass
                assert refused.value.extra_headers == {"Retry-After": "1"}

    def test_leaving_the_block_frees_the_slot_even_on_error(self):
        with pytest.raises(ZeroDivisionError):
            with concurrency_slot(user_id=2, kind="queries", limit=1, lease_seconds=30):
                1 / 0  # noqa: B018
        with concurrency_slot(user_id=2, kind="queries", limit=1, lease_seconds=30):
            pass

    def test_users_and_kinds_do_not_share_slots(self):
        with concurrency_slot(user_id=3, kind="uploads", limit=1, lease_seconds=30):
            with concurrency_slot(user_id=4, kind="uploads", limit=1, lease_seconds=30):
                with concurrency_slot(user_id=3, kind="queries", limit=1, lease_seconds=30):
                    pass

    def test_a_limit_of_zero_denies(self):
        with pytest.raises(RateLimited):
            with concurrency_slot(user_id=5, kind="uploads", limit=0, lease_seconds=30):
                pass


@requires_redis
class TestRedisSlots(SlotsContract):
    def test_a_dead_holders_slot_ends_with_its_lease(self):
        """A worker that died holding a slot: its lease (already past here) no longer counts."""
        redis_gate.run(lambda client: client.zadd(slots_key(6, "uploads"), {"dead-worker": 1}))
        with concurrency_slot(user_id=6, kind="uploads", limit=1, lease_seconds=30):
            pass


class TestLocalSlots(SlotsContract):
    @pytest.fixture(autouse=True)
    def redis_down(self, monkeypatch):
        def down(operation):
            raise RedisUnavailable("down")

        monkeypatch.setattr(concurrency.redis_gate, "run", down)

    def test_a_dead_holders_slot_ends_with_its_lease(self, monkeypatch):
        clock = [1000.0]
        monkeypatch.setattr(concurrency.time, "monotonic", lambda: clock[0])
        assert local_slots.acquire("k", holder="dead", limit=1, lease_seconds=5)
        assert not local_slots.acquire("k", holder="next", limit=1, lease_seconds=5)
        clock[0] += 6
        assert local_slots.acquire("k", holder="next", limit=1, lease_seconds=5)
