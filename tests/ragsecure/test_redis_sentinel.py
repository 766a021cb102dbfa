"""Redis behind Sentinel: REDIS_SENTINELS makes the limiter and the revocation cache follow the Sentinels' primary."""

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from accounts.ratelimit import RedisRateLimiter
from ragsecure.redis_gate import redis_gate
from ragsecure.settings.base import cache_settings, parse_sentinels
from tests.services import _free_port, start_redis_server

pytestmark = pytest.mark.redis


def test_sentinel_addresses_are_parsed_strictly():
    assert parse_sentinels("10.0.0.1:26379, sentinel-b:26380") == [("10.0.0.1", 26379), ("sentinel-b", 26380)]
    assert parse_sentinels("[::1]:26379") == [("::1", 26379)]
    for bad in ("10.0.0.1", "host:port", ":26379"):
        with pytest.raises(ValueError, match="REDIS_SENTINELS"):
            parse_sentinels(bad)


def test_without_sentinels_the_plain_client_is_used():
    options = cache_settings("redis://127.0.0.1:6379/0")["default"]["OPTIONS"]
    assert options["CLIENT_CLASS"] == "django_redis.client.DefaultClient" and "SENTINELS" not in options


@pytest.fixture(scope="module")
def sentinel():
    """A throwaway primary and one Sentinel (quorum 1) that monitors it as `ragsecure-primary`."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    primary, primary_url = start_redis_server()
    primary_port = int(primary_url.rsplit(":", 1)[1].split("/")[0])
    port = _free_port()
    config = Path(tempfile.mkdtemp(prefix="ragsecure-sentinel-")) / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\nsentinel monitor ragsecure-primary 127.0.0.1 {primary_port} 1\n"
        "sentinel down-after-milliseconds ragsecure-primary 5000\n"
    )
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [shutil.which("redis-server"), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_timeout=0.5).sentinel_get_master_addr_by_name("ragsecure-primary"):
                break
        except redis.RedisError:
            time.sleep(0.05)
    yield f"127.0.0.1:{port}", primary_port
    for child in (process, primary):
        child.terminate()
        child.wait(timeout=10)


def test_limiter_runs_on_the_primary_the_sentinel_names(sentinel, settings):
    address, primary_port = sentinel
    settings.CACHES = cache_settings("redis://ragsecure-primary/0", address)
    redis_gate.reset()
    try:
        limiter = RedisRateLimiter()
        decisions = [limiter.hit("rs:{u:7}:rlog", limit=2, window_seconds=60) for _ in range(3)]
        assert [decision.allowed for decision in decisions] == [True, True, False]
        # The log is on the server the Sentinel named, though no setting names its port.
        assert redis.Redis(port=primary_port, db=0).llen("rs:{u:7}:rlog") == 2
    finally:
        redis_gate.reset()
