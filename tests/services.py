"""pytest plugin: make sure a real Redis answers before Django loads its settings, starting one when needed.

RAGSECURE_TEST_REDIS_URL (default redis://127.0.0.1:6379/15; the suite flushes
that database) is used when it answers. Otherwise
a `redis-server` is started on a free port for the session. With neither, Redis
tests fail under CI and are skipped (loudly) elsewhere.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

DEFAULT_URL = "redis://127.0.0.1:6379/15"
_started: subprocess.Popen | None = None


def _answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis_server() -> tuple[subprocess.Popen, str]:
    """Start a throwaway redis-server on a free loopback port; return (process, url)."""
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="ragsecure-redis-")
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/15"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _answers(url):
            return process, url
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    global _started
    url = os.environ.get("RAGSECURE_TEST_REDIS_URL") or DEFAULT_URL
    if _answers(url):
        os.environ["REDIS_URL"] = url
        return
    if shutil.which("redis-server"):
        _started, url = start_redis_server()
        os.environ["REDIS_URL"] = url
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"Redis is required in CI: nothing answers at {url} and no redis-server binary exists")
    os.environ["REDIS_URL"] = ""
    os.environ["RAGSECURE_TESTS_WITHOUT_REDIS"] = "1"


def pytest_unconfigure(config) -> None:
    if _started is not None:
        _started.terminate()
        _started.wait(timeout=10)


def pytest_collection_modifyitems(config, items) -> None:
    if not os.environ.get("RAGSECURE_TESTS_WITHOUT_REDIS"):
        return
    skip = pytest.mark.skip(reason="no Redis server and no redis-server binary on this machine")
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config) -> str:
    return f"redis: {os.environ.get('REDIS_URL') or 'none (Redis tests skipped)'}" + (" (started for this session)" if _started else "")
