"""Sign-in lockout per (username, client IP): growing cool-offs, a slower per-name limit that spares known IPs,
the same answers for unknown names; in Redis, in local mode, and failing closed when Redis is down."""

import threading

import pytest
from django_redis import get_redis_connection

from accounts import lockout
from accounts.lockout import _LocalLockout, login_attempt_begin, login_attempt_release, login_failure_record
from accounts.services import user_limits_reset
from audit.models import AuditEntry
from ragsecure.redis_gate import RedisUnavailable, redis_configured, redis_gate
from ragsecure.settings.base import cache_settings
from tests.accounts.test_ratelimit import patient_cache_settings
from tests.conftest import PASSWORD, assert_error

pytestmark = [pytest.mark.database]

TOKEN_URL = "/api/v1/auth/token/"
WRONG = "not-the-password-000"
FREE_FAILURES = 3
BASE_COOLOFF = 10
MAX_COOLOFF = 40
GLOBAL_FAILURES = 6
HOME, ATTACKER, OTHER = "192.0.2.10", "203.0.113.66", "198.51.100.20"
DEAD_REDIS = "redis://127.0.0.1:1/0"


def login(api, username: str, password: str, ip: str):
    return api.post(TOKEN_URL, {"username": username, "password": password}, format="json", REMOTE_ADDR=ip)


def assert_locked(response) -> int:
    """Assert a lockout answer (429 rate_limited with Retry-After); return Retry-After."""
    assert_error(response, 429, "rate_limited")
    value = response["Retry-After"]
    assert value.isdigit() and int(value) >= 1, value
    assert b"access" not in response.content
    return int(value)


def set_lockout(settings, **changes) -> None:
    config = {
        "FREE_FAILURES": FREE_FAILURES,
        "BASE_COOLOFF": BASE_COOLOFF,
        "MAX_COOLOFF": MAX_COOLOFF,
        "WINDOW": 900,
        "GLOBAL_FAILURES": GLOBAL_FAILURES,
        "GLOBAL_WINDOW": 3600,
        "KNOWN_IP_DAYS": 30,
        **changes,
    }
    settings.RAGSECURE = {**settings.RAGSECURE, "TRUSTED_PROXIES": 0, "LOGIN_LOCKOUT": config}


@pytest.fixture(autouse=True)
def small_lockout(settings):
    set_lockout(settings)
    # Answers must not depend on a loaded test machine meeting the product's 50 ms socket timeout.
    settings.CACHES = patient_cache_settings(settings.REDIS_URL)
    redis_gate.reset()


class LockoutContract:
    """What the lockout guarantees whichever backend holds its state; subclasses say how a cool-off runs out."""

    def expire_lock(self, username: str, ip: str) -> None:
        raise NotImplementedError

    def fail_until_locked(self, api, username: str, ip: str, *, most: int = FREE_FAILURES + 2) -> tuple[int, int]:
        """Fail sign-ins until the lockout answers; return (failed attempts before it, its Retry-After)."""
        for attempt in range(most):
            response = login(api, username, WRONG, ip)
            if response.status_code == 429:
                return attempt, assert_locked(response)
            assert_error(response, 401, "authentication_failed")
        pytest.fail(f"no lockout after {most} failed sign-ins")

    # --- per (username, IP) ------------------------------------------------------------------

    def test_parallel_wrong_passwords_check_no_more_passwords_than_the_budget(self, user):
        """30 guesses at once: only FREE_FAILURES ever reach a password check (begin and record are one budget)."""
        barrier, checks, lock = threading.Barrier(30), [], threading.Lock()
        checking = threading.Event()

        def guess() -> None:
            barrier.wait(timeout=10)
            if login_attempt_begin(username="alice", ip=ATTACKER).locked:
                return
            with lock:
                checks.append(1)
                if len(checks) == FREE_FAILURES:
                    checking.set()
            checking.wait(timeout=2)  # every admitted check is in flight at once, as Argon2 makes them
            login_failure_record(username="alice", ip=ATTACKER)

        threads = [threading.Thread(target=guess) for _ in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert len(checks) == FREE_FAILURES
        assert login_attempt_begin(username="alice", ip=ATTACKER).locked

    def test_an_attempt_that_ends_without_an_outcome_gives_its_slot_back(self, user):
        for _ in range(FREE_FAILURES * 2):
            assert not login_attempt_begin(username="alice", ip=ATTACKER).locked
            login_attempt_release(username="alice", ip=ATTACKER)

    def test_free_failures_then_a_cool_off_even_for_the_right_password(self, api, user):
        failures = [login(api, "alice", WRONG, ATTACKER) for _ in range(FREE_FAILURES)]

        for response in failures:
            assert_error(response, 401, "authentication_failed")
        retry = assert_locked(login(api, "alice", PASSWORD, ATTACKER))
        assert BASE_COOLOFF - 1 <= retry <= BASE_COOLOFF

    def test_a_lockout_refuses_the_right_password_until_it_runs_out(self, api, user):
        self.fail_until_locked(api, "alice", ATTACKER)

        assert_locked(login(api, "alice", PASSWORD, ATTACKER))
        assert_locked(login(api, "alice", PASSWORD, ATTACKER))
        self.expire_lock("alice", ATTACKER)
        assert login(api, "alice", PASSWORD, ATTACKER).status_code == 200

    def test_cool_off_doubles_with_each_further_failure_up_to_the_maximum(self, api, user, settings):
        set_lockout(settings, GLOBAL_FAILURES=1000)  # only the per-IP rule in play here
        _, first = self.fail_until_locked(api, "alice", ATTACKER)
        retries = [first]
        for _ in range(3):
            self.expire_lock("alice", ATTACKER)
            # The cool-off has run out: the next guess is checked again (and fails)...
            assert_error(login(api, "alice", WRONG, ATTACKER), 401, "authentication_failed")
            # ...and starts a longer one.
            retries.append(assert_locked(login(api, "alice", WRONG, ATTACKER)))

        assert BASE_COOLOFF - 1 <= retries[0] <= BASE_COOLOFF
        assert 2 * BASE_COOLOFF - 1 <= retries[1] <= 2 * BASE_COOLOFF
        assert retries[0] < retries[1] < retries[2]
        assert MAX_COOLOFF - 1 <= retries[2] <= MAX_COOLOFF
        assert MAX_COOLOFF - 1 <= retries[3] <= MAX_COOLOFF

    def test_attempts_while_locked_do_not_lengthen_the_cool_off(self, api, user):
        _, first = self.fail_until_locked(api, "alice", ATTACKER)

        later = [assert_locked(login(api, "alice", WRONG, ATTACKER)) for _ in range(10)]

        assert max(later) <= first
        self.expire_lock("alice", ATTACKER)
        assert login(api, "alice", PASSWORD, ATTACKER).status_code == 200

    def test_another_ip_is_not_locked(self, api, user):
        self.fail_until_locked(api, "alice", ATTACKER)

        assert login(api, "alice", PASSWORD, OTHER).status_code == 200
        assert_error(login(api, "alice", WRONG, OTHER), 401, "authentication_failed")
        assert_locked(login(api, "alice", PASSWORD, ATTACKER))

    def test_another_username_from_the_same_ip_is_not_locked(self, api, make_user):
        make_user("alice")
        make_user("bob")
        self.fail_until_locked(api, "alice", ATTACKER)

        assert login(api, "bob", PASSWORD, ATTACKER).status_code == 200

    def test_success_clears_the_ips_failures(self, api, user):
        for _ in range(FREE_FAILURES - 1):
            assert_error(login(api, "alice", WRONG, HOME), 401, "authentication_failed")
        assert login(api, "alice", PASSWORD, HOME).status_code == 200

        for _ in range(FREE_FAILURES - 1):
            assert_error(login(api, "alice", WRONG, HOME), 401, "authentication_failed")

        assert login(api, "alice", PASSWORD, HOME).status_code == 200

    def test_username_keys_ignore_case(self, api, user):
        for name in ("Alice", "ALICE", "alice", "aLiCe", "ALICE"):
            response = login(api, name, WRONG, ATTACKER)
            if response.status_code == 429:
                break
            assert_error(response, 401, "authentication_failed")

        for name in ("alice", "ALICE", "Alice"):
            assert_locked(login(api, name, PASSWORD, ATTACKER))

    # --- the slower per-username limit across IPs ---------------------------------------------

    def spray(self, api, username: str, count: int = GLOBAL_FAILURES) -> None:
        """One wrong guess from each of `count` new IPs (none comes near its own limit); past the per-name
        limit the new IPs are held off."""
        for index in range(count):
            response = login(api, username, WRONG, f"10.66.0.{index + 1}")
            if index < GLOBAL_FAILURES:
                assert_error(response, 401, "authentication_failed")
            else:
                assert_locked(response)

    def test_distributed_guessing_holds_off_new_ips(self, api, user):
        self.spray(api, "alice")

        retry = assert_locked(login(api, "alice", PASSWORD, "10.66.1.1"))
        assert_locked(login(api, "alice", WRONG, "10.66.1.2"))
        assert 1 <= retry <= 3600

    def test_distributed_guessing_does_not_lock_the_user_out_of_a_known_ip(self, api, user):
        assert login(api, "alice", PASSWORD, HOME).status_code == 200

        self.spray(api, "alice", GLOBAL_FAILURES + 4)

        assert login(api, "alice", PASSWORD, HOME).status_code == 200
        assert_locked(login(api, "alice", PASSWORD, OTHER))

    def test_below_the_global_limit_new_ips_are_not_held_off(self, api, user):
        self.spray(api, "alice", GLOBAL_FAILURES - 1)

        assert login(api, "alice", PASSWORD, OTHER).status_code == 200

    # --- no user enumeration --------------------------------------------------------------------

    def attempt_log(self, api, username: str, ip: str, spray_prefix: str) -> list[tuple]:
        """The observable answers to one scripted attack on `username`."""
        responses = [login(api, username, WRONG, ip) for _ in range(FREE_FAILURES + 2)]
        self.expire_lock(username, ip)
        responses += [login(api, username, WRONG, ip) for _ in range(2)]
        responses += [login(api, username, WRONG, f"{spray_prefix}.{index}") for index in range(1, GLOBAL_FAILURES + 2)]
        observed = []
        for response in responses:
            body = response.json()
            body["error"].pop("request_id")
            headers = sorted(name for name, _ in response.items() if name != "X-Request-ID")
            observed.append((response.status_code, body, headers, int(response.get("Retry-After", "-1"))))
        return observed

    def test_unknown_and_existing_usernames_get_identical_answers(self, api, user):
        existing = self.attempt_log(api, "alice", ATTACKER, "10.1.0")
        unknown = self.attempt_log(api, "nobody-here", OTHER, "10.2.0")

        assert [status for status, *_ in existing].count(429) >= 3
        assert [entry[:3] for entry in existing] == [entry[:3] for entry in unknown]
        # Retry-After counts down in real time: equal to the second.
        assert all(abs(mine[3] - theirs[3]) <= 1 for mine, theirs in zip(existing, unknown, strict=True))

    # --- audit and operator reset ----------------------------------------------------------------

    def test_lockout_answer_is_audited_as_throttled(self, api, user):
        self.fail_until_locked(api, "alice", ATTACKER)

        response = login(api, "alice", PASSWORD, ATTACKER)

        entry = AuditEntry.objects.get(request_id=response["X-Request-ID"])
        assert entry.status == 429 and entry.outcome == "throttled"
        assert entry.username == "alice"
        assert entry.detail["login_lockout"]["retry_after"] >= 1
        assert PASSWORD not in str(entry.detail)

    def test_operator_reset_lifts_the_lockout(self, api, user):
        failures, _ = self.fail_until_locked(api, "alice", ATTACKER)
        self.spray(api, "alice", GLOBAL_FAILURES - failures)
        assert_locked(login(api, "alice", PASSWORD, "10.66.9.9"))

        user_limits_reset(users=[user], actor=None, reason="customer called")

        assert login(api, "alice", PASSWORD, ATTACKER).status_code == 200
        assert login(api, "alice", PASSWORD, "10.66.9.9").status_code == 200


@pytest.mark.redis
class TestRedisLockout(LockoutContract):
    """The lockout state in Redis, shared by every worker."""

    @pytest.fixture(autouse=True)
    def backend(self, monkeypatch):
        assert redis_configured()
        # Anything kept in process memory would show up here.
        monkeypatch.setattr(lockout, "_local", _LocalLockout())
        yield
        assert lockout._local.expiring == {} and lockout._local.known == {}

    def expire_lock(self, username: str, ip: str) -> None:
        redis = get_redis_connection("default")
        key = lockout._keys(username, ip)["lock"]
        assert redis.delete(key) == 1, "no lock key to expire"

    def test_lockout_keys_share_the_names_hash_tag_and_expire(self, api, user):
        self.fail_until_locked(api, "alice", ATTACKER)
        login(api, "alice", PASSWORD, HOME)

        redis = get_redis_connection("default")
        keys = [key.decode() for key in redis.scan_iter(match="rs:{login:*", count=1000)]
        tags = {key.split("}", 1)[0] for key in keys}
        assert len(tags) == 1 and len(keys) >= 4
        assert "alice" not in "".join(keys) and ATTACKER not in "".join(keys)
        assert all(redis.ttl(key) > 0 for key in keys), {key: redis.ttl(key) for key in keys}

    def test_another_process_sees_the_same_lockout(self, api, user, monkeypatch):
        self.fail_until_locked(api, "alice", ATTACKER)

        monkeypatch.setattr(lockout, "_local", _LocalLockout())

        assert_locked(login(api, "alice", PASSWORD, ATTACKER))


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def monotonic(self) -> float:
        return self.now


class TestLocalModeLockout(LockoutContract):
    """Local mode (no Redis configured): the same rules in process memory."""

    @pytest.fixture(autouse=True)
    def backend(self, settings, monkeypatch):
        settings.REDIS_URL = ""
        settings.CACHES = cache_settings("")
        redis_gate.reset()
        self.clock = FakeMonotonic()
        monkeypatch.setattr(lockout, "_local", _LocalLockout())
        monkeypatch.setattr(lockout, "time", self.clock)
        assert not redis_configured()
        yield
        redis_gate.reset()

    def expire_lock(self, username: str, ip: str) -> None:
        key = lockout._keys(username, ip)["lock"]
        _, until = lockout._local.expiring[key]
        assert until > self.clock.now, "no running cool-off to expire"
        self.clock.now = until + 0.001

    def test_global_failures_are_forgotten_after_the_global_window(self, api, user):
        self.spray(api, "alice")
        assert_locked(login(api, "alice", PASSWORD, OTHER))

        self.clock.now += 3600 + 1

        assert login(api, "alice", PASSWORD, OTHER).status_code == 200


# ---------------------------------------------------------------------------
# Redis configured but down: sign-in fails closed
# ---------------------------------------------------------------------------


@pytest.fixture
def dead_redis(settings):
    settings.REDIS_URL = DEAD_REDIS
    settings.CACHES = cache_settings(DEAD_REDIS)
    redis_gate.reset()
    yield
    redis_gate.reset()


def test_sign_in_fails_closed_while_redis_is_down(api, user, dead_redis):
    for password in (PASSWORD, WRONG):
        assert_error(login(api, "alice", password, ATTACKER), 503, "service_unavailable")


def test_unknown_username_fails_closed_the_same_way(api, user, dead_redis):
    known = login(api, "alice", WRONG, ATTACKER)
    unknown = login(api, "nobody-here", WRONG, ATTACKER)

    assert_error(known, 503, "service_unavailable")
    assert_error(unknown, 503, "service_unavailable")
    assert known.json()["error"]["message"] == unknown.json()["error"]["message"]


def test_lockout_service_raises_rather_than_allowing_while_redis_is_down(dead_redis, monkeypatch):
    monkeypatch.setattr(lockout, "_local", _LocalLockout())

    with pytest.raises(RedisUnavailable):
        login_attempt_begin(username="alice", ip=ATTACKER)
    with pytest.raises(RedisUnavailable):
        login_failure_record(username="alice", ip=ATTACKER)
    assert lockout._local.expiring == {}
