"""`make run`: migrate, bootstrap, find or start Redis (or fall back to local mode), then serve with gunicorn."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIND = os.environ.get("RAGSECURE_BIND", "127.0.0.1:8000")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def say(message: str) -> None:
    print(f"[ragsecure] {message}", flush=True)


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.3, socket_timeout=0.3).ping())
    except (redis.RedisError, ValueError):
        return False


def start_redis(url: str) -> subprocess.Popen | None:
    """Start a local redis-server for REDIS_URL's port when the URL is on this machine and the binary exists."""
    parsed = urlparse(url)
    binary = shutil.which("redis-server")
    if binary is None or parsed.hostname not in LOOPBACK:
        return None
    workdir = ROOT / "var" / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [binary, "--port", str(parsed.port or 6379), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis_answers(url):
            return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    return None


def start_audit_writer(env: dict) -> subprocess.Popen | None:
    """The host audit writer (workers share its commits); None when it cannot start (workers then write directly)."""
    var_dir = Path(env.get("RAGSECURE_VAR_DIR") or ROOT / "var")
    path = env.get("RAGSECURE_AUDIT_WRITER_SOCKET") or str(var_dir / "run" / "audit-writer.sock")
    if len(os.fsencode(path)) > 100:
        say(f"audit writer not started: socket path {path} is too long (set RAGSECURE_AUDIT_WRITER_SOCKET)")
        return None
    process = subprocess.Popen(  # noqa: S603 - fixed arguments
        [PYTHON, "manage.py", "audit_writer", "--socket", path], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    if "listening" not in (process.stdout.readline() or ""):
        process.wait(timeout=10)
        say("audit writer did not start: each worker writes its own audit entries")
        return None
    env["RAGSECURE_AUDIT_WRITER_SOCKET"] = path
    say(f"audit writer listening on {path}")
    return process


def manage(*args: str, env: dict) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)  # noqa: S603


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "ragsecure.settings.local")
    redis_url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis_process = audit_writer = None
    workers = int(env.get("WEB_CONCURRENCY", "0")) or max(2, (os.cpu_count() or 1) * 2 + 1)
    if not redis_url:
        say("REDIS_URL is empty: local mode (in-process limits, one worker)")
        workers = 1
    elif env.get("REDIS_SENTINELS"):
        say(f"Redis through Sentinels {env['REDIS_SENTINELS']} (service {redis_url})")
    elif redis_answers(redis_url):
        say(f"Redis answers at {redis_url}")
    else:
        redis_process = start_redis(redis_url)
        if redis_process is not None:
            say(f"started redis-server for {redis_url} (stops with this server)")
        else:
            say(f"no Redis at {redis_url} and no redis-server to start: local mode (in-process limits, one worker)")
            env["REDIS_URL"] = ""
            workers = 1
    try:
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("bootstrap", env=env)
        manage("collectstatic", "--noinput", "-v", "0", env=env)
        audit_writer = start_audit_writer(env)
        say(f"serving on http://{BIND} with {workers} worker(s)")
        # gunicorn.conf.py holds the server's settings (worker class, threads, limits); only these two vary here.
        gunicorn = subprocess.Popen(  # noqa: S603
            [PYTHON, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", BIND, "--workers", str(workers)],
            cwd=ROOT,
            env=env,
        )
        signal.signal(signal.SIGTERM, lambda *_: gunicorn.terminate())
        try:
            return gunicorn.wait()
        except KeyboardInterrupt:
            gunicorn.terminate()
            return gunicorn.wait()
    finally:
        for process in (audit_writer, redis_process):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
