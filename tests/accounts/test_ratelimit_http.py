"""Rate-limit exactness over real HTTP: gunicorn (2 workers x 8 threads), 3 users x 20 concurrent requests at a limit L.

The server runs in a throwaway environment of its own (tests/live.py). Per user exactly L requests are
admitted within the window, never L + 1, and every response carries the RateLimit headers.
"""

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live import live_server, redis_client

pytestmark = pytest.mark.redis

PASSWORD = "http-ratelimit-password-0123456789"
LIMIT = 7
USERS = ("rl-http-a", "rl-http-b", "rl-http-c")
THREADS_PER_USER = 20
TIER = "rl-http-exact"


SETUP_CODE = f"""
from accounts.models import Tier
Tier.objects.create(name={TIER!r}, requests_per_minute={LIMIT}, llm_tokens_per_day=1000, max_top_k=5,
                    max_document_bytes=100000, retrieved_bytes_per_hour=100000)
for username in {USERS!r}:
    call_command("create_api_user", username, tier={TIER!r}, scopes=["query:read"], verbosity=0)
"""


@pytest.fixture(scope="module")
def live():
    """A gunicorn server (2 workers x 8 threads) on its own SQLite database and Redis database."""
    with live_server(
        redis_database=5, setup_code=SETUP_CODE, setup_env={"RAGSECURE_PASSWORD": PASSWORD},
        gunicorn_args=("--workers", "2", "--threads", "8"),
    ) as server:
        yield server


def _obtain(live, username: str) -> str:
    body = json.dumps({"username": username, "password": PASSWORD}).encode()
    status, _, payload = live.request("POST", "/api/v1/auth/token/", {"Content-Type": "application/json"}, body)
    assert status == 200, (status, payload[:300])
    return json.loads(payload)["access"]


def test_concurrent_requests_admit_exactly_the_tier_limit_per_user(live):
    port = live.port
    with ThreadPoolExecutor(len(USERS)) as pool:  # sign-ins hash with Argon2: in parallel
        tokens = dict(zip(USERS, pool.map(lambda username: _obtain(live, username), USERS), strict=True))
    jobs = [username for username in USERS for _ in range(THREADS_PER_USER)]
    barrier = threading.Barrier(len(jobs))
    results: list[tuple[str, int, dict, bytes] | tuple[str, Exception]] = []
    lock = threading.Lock()

    def fire(username: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.connect()  # connected before the barrier, so the requests leave together
            barrier.wait(timeout=30)
            connection.request("GET", "/api/v1/auth/me/", headers={"Host": "localhost", "Authorization": f"Bearer {tokens[username]}"})
            response = connection.getresponse()
            outcome = (username, response.status, dict(response.getheaders()), response.read())
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            outcome = (username, exc)
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    started = time.monotonic()
    threads = [threading.Thread(target=fire, args=(username,)) for username in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads)
    failures = [outcome for outcome in results if len(outcome) == 2]
    assert not failures, failures[:3]
    assert len(results) == len(jobs)
    # Everything happened well inside one 60 s window, so no logged request has left it yet.
    assert elapsed < 30, elapsed

    for username in USERS:
        mine = [outcome for outcome in results if outcome[0] == username]
        statuses = sorted(status for _, status, _, _ in mine)
        assert statuses.count(200) == LIMIT, (username, statuses)
        assert statuses.count(429) == THREADS_PER_USER - LIMIT, (username, statuses)
        remaining_admitted = []
        for _, status, headers, body in mine:
            assert headers.get("RateLimit-Limit") == str(LIMIT), (status, headers)
            assert "RateLimit-Remaining" in headers and "RateLimit-Reset" in headers, headers
            assert 0 <= int(headers["RateLimit-Reset"]) <= 60, headers
            if status == 200:
                assert json.loads(body)["username"] == username
                remaining_admitted.append(int(headers["RateLimit-Remaining"]))
            else:
                error = json.loads(body)["error"]
                assert error["code"] == "rate_limited", error
                assert headers["RateLimit-Remaining"] == "0", headers
                assert int(headers["Retry-After"]) >= 1, headers
        # Each admitted request saw its own place in the window: L-1, L-2, ..., 0, each once.
        assert sorted(remaining_admitted) == list(range(LIMIT)), (username, remaining_admitted)

    # The request logs hold exactly L entries per user: nothing was admitted beyond the limit.
    client = redis_client(live.redis_url)
    logs = sorted(key.decode() for key in client.scan_iter(match="rs:{u:*}:rlog"))
    assert len(logs) == len(USERS), logs
    assert [client.llen(key) for key in logs] == [LIMIT] * len(USERS)

    # The next request of any of them is still refused within the window.
    status, headers, body = live.request("GET", "/api/v1/auth/me/", {"Authorization": f"Bearer {tokens[USERS[0]]}"})
    assert status == 429 and json.loads(body)["error"]["code"] == "rate_limited", (status, body[:300])
    assert headers.get("RateLimit-Limit") == str(LIMIT) and headers.get("RateLimit-Remaining") == "0", headers
