"""A slow model over real HTTP: one user's queries waiting on it hold at most their slots, and /healthz answers within 1 s."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.documents import fake_llm as fake
from tests.live import live_server

pytestmark = pytest.mark.redis

PASSWORD = "answering-live-password-0123456789"
SETUP_CODE = """
call_command("create_api_user", "asker", tier="pro", scopes=["query:read"], verbosity=0)
from accounts.models import User
from documents.services import document_create
document_create(owner=User.objects.get(username="asker"), title="Refunds", content="Refunds are issued within 14 days.")
"""


@pytest.fixture(scope="module")
def slow_model():
    server = fake.FakeLLM().start()
    server.default = fake.SLOW
    server.slow_seconds = 4.0
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live(slow_model):
    env = {
        "RAGSECURE_LLM_BACKEND": "openai", "RAGSECURE_LLM_BASE_URL": slow_model.base_url, "RAGSECURE_LLM_MODEL": "fake-model",
        "RAGSECURE_SECRET_LLM_API_KEY": "sk-live-test-key-0123456789",
    }
    with live_server(
        redis_database=11, setup_code=SETUP_CODE, setup_env={"RAGSECURE_PASSWORD": PASSWORD}, env=env,
        gunicorn_args=("--workers", "2", "--threads", "4"),
    ) as server:
        yield server


def test_one_users_queries_on_a_slow_model_cannot_take_every_worker(live, slow_model):
    body = json.dumps({"username": "asker", "password": PASSWORD}).encode()
    status, _, payload = live.request("POST", "/api/v1/auth/token/", {"Content-Type": "application/json"}, body)
    assert status == 200, payload[:300]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {json.loads(payload)['access']}"}
    query = json.dumps({"query": "How long do refunds take?", "top_k": 3}).encode()

    def ask(_):
        return live.request("POST", "/api/v1/query/", headers, query, timeout=60)

    with ThreadPoolExecutor(9) as pool:
        answers = pool.map(ask, range(8))
        time.sleep(0.5)  # the queries are in: two wait on the model, the rest were refused
        health = pool.submit(live.health_times, time.monotonic() + 3).result()
        statuses = sorted(status for status, _, _ in answers)
    assert max(health) < 1.0, sorted(health)[-3:]
    assert statuses.count(200) == 2 and statuses.count(429) == 6, statuses
    assert len(slow_model.requests) == 2
