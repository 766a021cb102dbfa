"""Ingestion under attack over real HTTP: a pathological upload and eight parallel maximal uploads by one pro user
leave the service answering (/healthz within 2 s) and store nothing they should not."""

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.live import live_server

pytestmark = pytest.mark.redis

PASSWORD = "ingestion-live-password-0123456789"
SETUP_CODE = """
call_command("create_api_user", "uploader", tier="pro", scopes=["documents:write", "documents:read"], verbosity=0)
"""


@pytest.fixture(scope="module")
def live():
    with live_server(
        redis_database=9, setup_code=SETUP_CODE, setup_env={"RAGSECURE_PASSWORD": PASSWORD},
        gunicorn_args=("--workers", "2", "--threads", "4"),
    ) as server:
        yield server


@pytest.fixture(scope="module")
def access(live) -> str:
    body = json.dumps({"username": "uploader", "password": PASSWORD}).encode()
    status, _, payload = live.request("POST", "/api/v1/auth/token/", {"Content-Type": "application/json"}, body)
    assert status == 200, payload[:300]
    return json.loads(payload)["access"]


def prose(size: int, seed: int) -> str:
    rng = random.Random(seed)
    words = [rng.choice(("river", "stone", "heron", "ledger", "garden", "winter", "signal", "harbour")) + str(rng.randrange(500))
             for _ in range(size // 8)]
    text = ". ".join(" ".join(words[start : start + 14]) for start in range(0, len(words), 14))
    return text.encode()[: size - 100].decode(errors="ignore")


def upload(live, access: str, content: str):
    body = json.dumps({"title": "load", "content": content}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {access}"}
    started = time.monotonic()
    status, _, payload = live.request("POST", "/api/v1/documents/", headers, body, timeout=120)
    return status, payload, time.monotonic() - started


def test_a_pathological_upload_is_refused_quickly_while_health_answers(live, access):
    with ThreadPoolExecutor(2) as pool:
        health = pool.submit(live.health_times, time.monotonic() + 3)
        status, payload, elapsed = upload(live, access, ".-" * 499_500)
        assert status == 413 and json.loads(payload)["error"]["code"] == "payload_too_large", payload[:200]
        assert elapsed < 3, elapsed
        assert max(health.result()) < 2


def test_eight_parallel_maximal_uploads_leave_health_under_two_seconds(live, access):
    contents = [prose(999_000, seed) for seed in range(8)]
    with ThreadPoolExecutor(9) as pool:
        health = pool.submit(live.health_times, time.monotonic() + 8)
        results = list(pool.map(lambda content: upload(live, access, content), contents))
        times = health.result()
    statuses = sorted(status for status, _, _ in results)
    assert set(statuses) <= {201, 429} and 201 in statuses, statuses
    for status, payload, _ in results:
        if status == 429:
            assert json.loads(payload)["error"]["code"] == "rate_limited"
    assert max(times) < 2, sorted(times)[-5:]
