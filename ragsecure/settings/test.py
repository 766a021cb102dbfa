"""Test settings: real Redis (REDIS_URL, started by the test session when needed), fast password hashing."""

import os
import tempfile

from .base import *  # noqa: F403
from .base import DATABASES, RAGSECURE, cache_settings, env

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-production-0123456789abcdef"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

# A file database, not SQLite's in-memory default, so concurrent threads see one database.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"ragsecure-test-{os.getpid()}.sqlite3")}

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/15")
CACHES = cache_settings(REDIS_URL)

STATIC_ROOT = None  # nothing is collected for tests; WhiteNoise then serves nothing and says nothing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Argon2 stays the algorithm under test; its cost is lowered so the suite runs in minutes.
PASSWORD_HASHERS = ["tests.hashers.FastArgon2PasswordHasher"]

RAGSECURE = {
    **RAGSECURE,
    "SECRETS_BACKEND": "file",
    "SECRETS_DIR": os.path.join(tempfile.gettempdir(), f"ragsecure-test-secrets-{os.getpid()}"),
    "REDIS_RETRY_INTERVAL": 0.0,
    # Per-IP limits stay out of the way of tests that log in often; rate-limit tests set their own.
    "ANONYMOUS_RATES": {"auth": 100_000, "public": 100_000, "auth_failures": 100_000},
    # The test database is gone by interpreter exit.
    "AUDIT_CHECKPOINT_AT_EXIT": False,
    # Tests write checkpoints where they expect them; a timer thread would add its own at random moments.
    "AUDIT_CHECKPOINT_TIMER": False,
    "AUDIT_DIR": os.path.join(tempfile.gettempdir(), f"ragsecure-test-audit-{os.getpid()}"),
    # Tests that use a host writer start their own.
    "AUDIT_WRITER_SOCKET": "",
}
