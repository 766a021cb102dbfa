"""Rate-limit exactness over real HTTP: gunicorn (2 workers x 8 threads), 3 users x 20 concurrent requests at a limit L.

The server runs in a throwaway environment of its own (a SQLite file database, var,
secrets and audit directories in a temp dir, and a Redis database next to the test
one: RAGSECURE_TEST_HTTP_REDIS_URL, by default the test Redis URL with database 5, which
is flushed before and after), so nothing here touches the pytest-django test database or
the suite's Redis database. Per user exactly L requests are admitted within the window, never L + 1,
and every response carries the RateLimit headers.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = sys.executable
PASSWORD = "http-ratelimit-password-0123456789"
LIMIT = 7
USERS = ("rl-http-a", "rl-http-b", "rl-http-c")
THREADS_PER_USER = 20
TIER = "rl-http-exact"


SETUP_CODE = f"""
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("bootstrap", verbosity=0)
from accounts.models import Tier
Tier.objects.create(name={TIER!r}, requests_per_minute={LIMIT}, llm_tokens_per_day=1000, max_top_k=5,
                    max_document_bytes=100000, retrieved_bytes_per_hour=100000)
for username in {USERS!r}:
    call_command("create_api_user", username, tier={TIER!r}, scopes=["query:read"], verbosity=0)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sibling_redis_url(url: str) -> str:
    """The test Redis URL with another database number (5, or 6 when the suite itself uses 5)."""
    parsed = urlparse(url)
    current = parsed.path.lstrip("/") or "0"
    database = "6" if current == "5" else "5"
    return urlunparse(parsed._replace(path=f"/{database}"))


def _manage(env: dict, *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Host": "localhost", **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


@pytest.fixture(scope="module")
def server():
    """A gunicorn server on its own SQLite database and Redis database; yields (port, redis_url)."""
    test_redis = os.environ.get("REDIS_URL", "")
    if not test_redis:
        pytest.skip("no Redis for this session")
    redis_url = os.environ.get("RAGSECURE_TEST_HTTP_REDIS_URL") or _sibling_redis_url(test_redis)
    workdir = tempfile.mkdtemp(prefix="ragsecure-rl-http-")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ragsecure.settings.local",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3",
        "RAGSECURE_VAR_DIR": workdir,
        "RAGSECURE_SECRETS_DIR": f"{workdir}/secrets",
        "RAGSECURE_AUDIT_DIR": f"{workdir}/audit",
        "REDIS_URL": redis_url,
        "PYTHONWARNINGS": "ignore::UserWarning",
    }
    _redis(redis_url).flushdb()
    process = None
    log = open(f"{workdir}/gunicorn.log", "w+b")  # noqa: SIM115 - closed in the finally below
    try:
        # One interpreter runs migrate, bootstrap, the tier and create_api_user (each a seconds-long start otherwise).
        _manage({**env, "RAGSECURE_PASSWORD": PASSWORD}, "shell", "--no-imports", "-c", SETUP_CODE)
        port = _free_port()
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [PYTHON, "-m", "gunicorn", "ragsecure.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--worker-class", "gthread", "--threads", "8", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if _request(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"gunicorn did not start:\n{log.read().decode(errors='replace')[-4000:]}")
            time.sleep(0.1)
        yield port, redis_url
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()
        try:
            _redis(redis_url).flushdb()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _obtain(port: int, username: str) -> str:
    body = json.dumps({"username": username, "password": PASSWORD}).encode()
    status, _, payload = _request(port, "POST", "/api/v1/auth/token/", {"Content-Type": "application/json"}, body)
    assert status == 200, (status, payload[:300])
    return json.loads(payload)["access"]


def test_concurrent_requests_admit_exactly_the_tier_limit_per_user(server):
    port, redis_url = server
    with ThreadPoolExecutor(len(USERS)) as pool:  # sign-ins hash with Argon2: in parallel
        tokens = dict(zip(USERS, pool.map(lambda username: _obtain(port, username), USERS), strict=True))
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
    client = _redis(redis_url)
    logs = sorted(key.decode() for key in client.scan_iter(match="rs:{u:*}:rlog"))
    assert len(logs) == len(USERS), logs
    assert [client.llen(key) for key in logs] == [LIMIT] * len(USERS)

    # The next request of any of them is still refused within the window.
    status, headers, body = _request(port, "GET", "/api/v1/auth/me/", {"Authorization": f"Bearer {tokens[USERS[0]]}"})
    assert status == 429 and json.loads(body)["error"]["code"] == "rate_limited", (status, body[:300])
    assert headers.get("RateLimit-Limit") == str(LIMIT) and headers.get("RateLimit-Remaining") == "0", headers
