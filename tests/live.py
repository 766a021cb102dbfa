"""A real gunicorn server for tests over HTTP, in a throwaway environment of its own.

Each server gets a SQLite file database, var, secrets and audit directories in a temp dir,
and a Redis database next to the suite's (flushed before and after), so nothing here
touches the pytest-django test database or the suite's Redis database.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

BOOTSTRAP_CODE = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
call_command("bootstrap", verbosity=0)
"""


@dataclass(frozen=True)
class LiveServer:
    port: int
    redis_url: str
    workdir: str
    env: dict

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None, *, timeout: float = 30):
        return request(self.port, method, path, headers, body, timeout=timeout)

    def log(self) -> str:
        return Path(self.workdir, "gunicorn.log").read_text(errors="replace")

    def health_times(self, until: float) -> list[float]:
        """How long each /healthz took, asked every 0.1 s until `until` (monotonic): the service's answer under load."""
        times = []
        while time.monotonic() < until:
            started = time.monotonic()
            assert self.request("GET", "/healthz", timeout=30)[0] == 200
            times.append(time.monotonic() - started)
            time.sleep(0.1)
        return times


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sibling_redis_url(url: str, database: int) -> str:
    """The test Redis URL with database `database` (or the next one, when the suite itself uses that)."""
    parsed = urlparse(url)
    current = parsed.path.lstrip("/") or "0"
    chosen = database + 1 if current == str(database) else database
    return urlunparse(parsed._replace(path=f"/{chosen}"))


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None, *, timeout: float = 30):
    """(status, headers, body) of one request on a connection of its own."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers={"Host": "localhost", **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


@contextmanager
def live_server(
    *, redis_database: int, setup_code: str = "", gunicorn_args: tuple[str, ...] = (), env: dict | None = None,
    setup_env: dict | None = None, ready: Callable[[int], bool] | None = None,
) -> Iterator[LiveServer]:
    """gunicorn started from the project root (so gunicorn.conf.py applies), with `gunicorn_args` added."""
    test_redis = os.environ.get("REDIS_URL", "")
    if not test_redis:
        pytest.skip("no Redis for this session")
    redis_url = sibling_redis_url(test_redis, redis_database)
    workdir = tempfile.mkdtemp(prefix="ragsecure-live-")
    server_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ragsecure.settings.local",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": f"sqlite:///{workdir}/db.sqlite3",
        "RAGSECURE_VAR_DIR": workdir,
        "RAGSECURE_SECRETS_DIR": f"{workdir}/secrets",
        "RAGSECURE_AUDIT_DIR": f"{workdir}/audit",
        "REDIS_URL": redis_url,
        "PYTHONWARNINGS": "ignore::UserWarning",
        **(env or {}),
    }
    redis_client(redis_url).flushdb()
    process = None
    log = open(f"{workdir}/gunicorn.log", "w+b")  # noqa: SIM115 - closed in the finally below
    try:
        # One interpreter runs migrate, bootstrap and the test's own set-up (each a seconds-long start otherwise).
        manage({**server_env, **(setup_env or {})}, "shell", "--no-imports", "-c", BOOTSTRAP_CODE + setup_code)
        port = free_port()
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [PYTHON, "-m", "gunicorn", "ragsecure.wsgi", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
             "--access-logfile", "/dev/null", *gunicorn_args],
            cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if ready(port) if ready is not None else request(port, "GET", "/healthz", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"gunicorn did not start:\n{log.read().decode(errors='replace')[-4000:]}")
            time.sleep(0.1)
        yield LiveServer(port=port, redis_url=redis_url, workdir=workdir, env=server_env)
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
            redis_client(redis_url).flushdb()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
