"""The database password from the secrets provider, against a real PostgreSQL that checks passwords (a throwaway
cluster with scram-sha-256): a rotated password is used by the next connection without a restart."""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from ragsecure.db.postgresql.base import PASSWORD_SECRET, DatabaseWrapper
from ragsecure.secrets import secrets_provider

pytestmark = pytest.mark.database


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    candidates = [Path(found).parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((path for path in candidates if (path / "initdb").exists() and (path / "pg_ctl").exists()), None)


@pytest.fixture(scope="module")
def cluster():
    """A PostgreSQL cluster of its own on a free port, with password authentication for role `app` (password `first`)."""
    pg_bin = _pg_bin()
    if pg_bin is None:
        if os.environ.get("CI"):
            pytest.fail("initdb/pg_ctl are needed for the database password rotation test")
        pytest.skip("initdb/pg_ctl are not installed")
    workdir = Path(tempfile.mkdtemp(prefix="ragsecure-pgauth-"))
    as_owner: list[str] = []
    owner = "postgres" if _user_exists("postgres") else "nobody"
    if os.getuid() == 0:  # initdb refuses to run as root: the cluster belongs to an unprivileged account
        shutil.chown(workdir, owner)
        as_owner = ["runuser", "-u", owner, "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = workdir / "data"
    (workdir / "pw").write_text("super-secret-0\n")
    if as_owner:
        shutil.chown(workdir / "pw", owner)
    subprocess.run([*as_owner, str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                    f"--pwfile={workdir / 'pw'}", "-E", "UTF8"], check=True, capture_output=True)
    subprocess.run([*as_owner, str(pg_bin / "pg_ctl"), "-D", str(data), "-o", f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1",
                    "-l", str(workdir / "log"), "-w", "start"], check=True, capture_output=True)
    admin = f"host=127.0.0.1 port={port} user=postgres password=super-secret-0 dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("CREATE ROLE app LOGIN PASSWORD 'first'")
        connection.execute("CREATE DATABASE app OWNER app")
    yield {"port": port, "admin": admin}
    subprocess.run([*as_owner, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(workdir, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _wrapper(cluster) -> DatabaseWrapper:
    return DatabaseWrapper(
        {"NAME": "app", "USER": "app", "PASSWORD": "", "HOST": "127.0.0.1", "PORT": str(cluster["port"]), "OPTIONS": {},
         "TIME_ZONE": None, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False, "AUTOCOMMIT": True, "ATOMIC_REQUESTS": False, "TEST": {}},
        alias="rotation-test",
    )


def _rotate_on_server(cluster, password: str) -> None:
    with psycopg.connect(cluster["admin"], autocommit=True) as connection:
        connection.execute(psycopg.sql.SQL("ALTER ROLE app PASSWORD {}").format(psycopg.sql.Literal(password)))


def _who(wrapper: DatabaseWrapper) -> str:
    wrapper.ensure_connection()
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


@pytest.fixture
def password_secret():
    provider = secrets_provider()
    yield provider
    Path(provider.backends[-1].directory, PASSWORD_SECRET).unlink(missing_ok=True)
    provider.invalidate(PASSWORD_SECRET)


def test_a_rotated_password_reaches_the_next_connection_without_a_restart(cluster, password_secret):
    _rotate_on_server(cluster, "first")
    password_secret.put(PASSWORD_SECRET, "first")
    wrapper = _wrapper(cluster)
    assert _who(wrapper) == "app"

    _rotate_on_server(cluster, "second")
    password_secret.put(PASSWORD_SECRET, "second")
    wrapper.close()
    assert _who(wrapper) == "app"
    wrapper.close()


def test_a_refused_password_reads_the_secret_again_once(cluster, password_secret):
    """The store and the server have the new password; this process still caches the old one."""
    _rotate_on_server(cluster, "third")
    password_secret.put(PASSWORD_SECRET, "second-cached")
    assert password_secret.get(PASSWORD_SECRET) == "second-cached"
    password_secret.backends[-1].put(PASSWORD_SECRET, "third")  # behind the cache
    password_secret._refreshed.clear()
    wrapper = _wrapper(cluster)
    assert _who(wrapper) == "app"
    wrapper.close()


def test_a_wrong_password_everywhere_fails_once_and_plainly(cluster, password_secret):
    _rotate_on_server(cluster, "fourth")
    password_secret.put(PASSWORD_SECRET, "not-it")
    password_secret._refreshed.clear()
    wrapper = _wrapper(cluster)
    with pytest.raises(Exception) as caught:
        wrapper.ensure_connection()
    assert "password" in str(caught.value).lower() and "not-it" not in str(caught.value)
