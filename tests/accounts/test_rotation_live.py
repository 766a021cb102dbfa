"""Signing-key rotation under load, over real HTTP: several gunicorn workers, clients looping token refresh and use
while `rotate_signing_key` runs, on the file and the aws secrets backends. Not one request may fail."""

import json
import random
import subprocess
import threading
import time

import jwt
import pytest

from tests.live import PYTHON, ROOT, live_server
from tests.moto_server import CREDENTIALS, moto_server

pytestmark = pytest.mark.redis

PASSWORD = "rotation-live-password-0123456789"
CLIENTS = 4
SETUP_CODE = f"""
for number in range({CLIENTS}):
    call_command("create_api_user", f"rotator-{{number}}", tier="enterprise", scopes=["query:read"], verbosity=0)
"""
# Workers re-read the ring every 3 s, so the command's publish wait (one TTL and a margin) is 6 s.
CACHE_TTL = "3"


@pytest.fixture(scope="module", params=["file", "aws"])
def live(request):
    env = {"RAGSECURE_SECRETS_CACHE_TTL": CACHE_TTL, "RAGSECURE_TRUSTED_PROXIES": "1"}
    if request.param == "file":
        with live_server(redis_database=12, setup_code=SETUP_CODE, setup_env={"RAGSECURE_PASSWORD": PASSWORD}, env=env,
                         gunicorn_args=("--workers", "3", "--threads", "2")) as server:
            yield server
        return
    with moto_server() as endpoint:
        env.update({**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "RAGSECURE_SECRETS_BACKEND": "aws",
                    "RAGSECURE_AWS_SECRET_PREFIX": "ragsecure-live/"})
        with live_server(redis_database=12, setup_code=SETUP_CODE, setup_env={"RAGSECURE_PASSWORD": PASSWORD}, env=env,
                         gunicorn_args=("--workers", "3", "--threads", "2")) as server:
            yield server


def post(live, path: str, body: dict, headers: dict | None = None):
    # A different client address each time (the server trusts one proxy here), so per-IP sign-in limits stay out of the way.
    forwarded = {"X-Forwarded-For": f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"}
    return live.request("POST", path, {"Content-Type": "application/json", **forwarded, **(headers or {})}, json.dumps(body).encode())


def test_rotating_the_signing_key_under_load_fails_no_request(live):
    pairs = []
    for number in range(CLIENTS):
        status, _, payload = post(live, "/api/v1/auth/token/", {"username": f"rotator-{number}", "password": PASSWORD})
        assert status == 200, payload[:300]
        pairs.append(json.loads(payload))
    stop = threading.Event()
    outcomes: list[tuple[str, int]] = []
    kids: set[str] = set()
    lock = threading.Lock()

    def client(pair: dict) -> None:
        while not stop.is_set():
            status, _, payload = post(live, "/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]})
            with lock:
                outcomes.append(("refresh", status))
            if status != 200:
                return
            pair = json.loads(payload)
            with lock:
                kids.add(jwt.get_unverified_header(pair["access"])["kid"])
            for _ in range(3):
                status, _, _ = live.request("GET", "/api/v1/auth/me/", {"Authorization": f"Bearer {pair['access']}"})
                with lock:
                    outcomes.append(("me", status))

    threads = [threading.Thread(target=client, args=(pair,)) for pair in pairs]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        rotation = subprocess.run(  # noqa: S603 - fixed arguments
            [PYTHON, "manage.py", "rotate_signing_key"], cwd=ROOT, env=live.env, capture_output=True, text=True, timeout=120
        )
        assert rotation.returncode == 0, rotation.stderr[-2000:]
        time.sleep(4)  # keep going on the new key, past every worker's cache
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    failures = [outcome for outcome in outcomes if outcome[1] != 200]
    assert not failures, failures[:10]
    assert len(outcomes) > 50
    assert len(kids) == 2, kids  # tokens of the old and the new key were both used


def test_jwks_serves_pyjwt_clients_the_key_of_every_token(live):
    status, _, payload = post(live, "/api/v1/auth/token/", {"username": "rotator-0", "password": PASSWORD})
    access = json.loads(payload)["access"]
    client = jwt.PyJWKClient(f"http://127.0.0.1:{live.port}/.well-known/jwks.json", headers={"Host": "localhost"})
    key = client.get_signing_key_from_jwt(access)
    claims = jwt.decode(access, key.key, algorithms=["EdDSA"], options={"verify_aud": False})
    assert claims["sub"] or claims.get("user_id")
