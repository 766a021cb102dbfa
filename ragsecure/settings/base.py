"""Settings shared by every deployment; environment-specific modules extend these."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
VAR_DIR = Path(env.str("RAGSECURE_VAR_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "ragsecure.apps.RagsecureConfig",
    "accounts.apps.AccountsConfig",
    "documents.apps.DocumentsConfig",
    "audit.apps.AuditConfig",
]

# Header-setting middleware sits outside the error middleware, so that error
# responses built there still carry request ids, security and cache headers.
MIDDLEWARE = [
    "ragsecure.middleware.RequestIdMiddleware",
    "audit.middleware.AuditMiddleware",
    "ragsecure.middleware.AllowedHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ragsecure.middleware.CacheControlMiddleware",
    "ragsecure.middleware.RateLimitHeadersMiddleware",
    "ragsecure.middleware.ApiErrorMiddleware",
    "ragsecure.middleware.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
# A missing trailing slash is a 404 in the error shape, never a redirect that drops a POST body.
APPEND_SLASH = False

ROOT_URLCONF = "ragsecure.urls"
WSGI_APPLICATION = "ragsecure.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------------------
# Database: DATABASE_URL, SQLite in var/ by default
# ---------------------------------------------------------------------------
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'ragsecure.sqlite3'}")}


def tune_database(database: dict) -> dict:
    """Apply the engine options ragsecure relies on (persistent connections, SQLite write locking, timeouts)."""
    # Every request writes its audit entry: a connection per request would cost more than the write.
    database.setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
    database.setdefault("CONN_HEALTH_CHECKS", True)
    if database["ENGINE"] == "django.db.backends.sqlite3":
        options = database.setdefault("OPTIONS", {})
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue
        # instead of failing with "database is locked" mid-transaction.
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 20)
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    elif database["ENGINE"] in ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"):
        database["ENGINE"] = "django.db.backends.postgresql"
        options = database.setdefault("OPTIONS", {})
        options.setdefault("connect_timeout", 5)
    return database


tune_database(DATABASES["default"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------
# Redis (rate limits, revocation cache, user-state cache); empty = local mode
# ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")


def parse_sentinels(value: str) -> list[tuple[str, int]]:
    """`host:port,host:port` (IPv6 as `[::1]:26379`) as Sentinel addresses; ValueError when malformed."""
    sentinels = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS: expected host:port, got {item!r}")
        sentinels.append((host.strip("[]"), int(port)))
    return sentinels


def cache_settings(redis_url: str, sentinels: str = "") -> dict:
    """Django CACHES for a Redis URL (empty: in-process memory, for local mode).

    With `sentinels` (REDIS_SENTINELS), the URL's host is the Sentinel service name
    (`redis://mymaster/0`) and connections go to whichever server the Sentinels name as primary.
    """
    if not redis_url:
        return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    options = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        # Tens of milliseconds: a dead Redis must not stall requests.
        "SOCKET_CONNECT_TIMEOUT": 0.05,
        "SOCKET_TIMEOUT": 0.08,
        "CONNECTION_POOL_KWARGS": {"max_connections": 64, "retry_on_timeout": False},
    }
    if sentinels:
        options.update(
            CLIENT_CLASS="django_redis.client.SentinelClient",
            CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
            SENTINELS=parse_sentinels(sentinels),
            # Asking the Sentinels who is primary may take longer than a command; still bounded.
            SENTINEL_KWARGS={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        )
    return {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": redis_url, "KEY_PREFIX": "rs", "OPTIONS": options}}


REDIS_SENTINELS = env.str("REDIS_SENTINELS", default="")
CACHES = cache_settings(REDIS_URL, REDIS_SENTINELS)

# ---------------------------------------------------------------------------
# Authentication and passwords
# ---------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ---------------------------------------------------------------------------
# Request limits
# ---------------------------------------------------------------------------
# Large enough for a 1,000,000-byte document in JSON (escaping can double it).
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

# ---------------------------------------------------------------------------
# Internationalisation, static files
# ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# ---------------------------------------------------------------------------
# Django REST framework, OpenAPI
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "accounts.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasRequiredScopes"],
    "DEFAULT_PARSER_CLASSES": ["ragsecure.parsers.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "ragsecure.schema.RagsecureAutoSchema",
    "EXCEPTION_HANDLER": "ragsecure.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.TierRateThrottle"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PAGINATION_CLASS": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ragsecure API",
    "DESCRIPTION": "Zero-trust security layer in front of a retrieval-augmented generation API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# simplejwt's own settings: claim names only. Keys, algorithms and lifetimes are
# read per use from RAGSECURE (see ragsecure.conf), never frozen at import.
SIMPLE_JWT = {
    "USER_ID_CLAIM": "sub",
    "USER_ID_FIELD": "id",
    "TOKEN_TYPE_CLAIM": "token_type",
    "JTI_CLAIM": "jti",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
}

# ---------------------------------------------------------------------------
# ragsecure (read through ragsecure.conf.ragsecure_settings)
# ---------------------------------------------------------------------------
RAGSECURE = {
    "SECRETS_BACKEND": env.str("RAGSECURE_SECRETS_BACKEND", default="file"),
    "SECRETS_DIR": env.str("RAGSECURE_SECRETS_DIR", default=str(VAR_DIR / "secrets")),
    "AWS_SECRET_PREFIX": env.str("RAGSECURE_AWS_SECRET_PREFIX", default="ragsecure/"),
    "SECRETS_CACHE_TTL": env.float("RAGSECURE_SECRETS_CACHE_TTL", default=300.0),
    "TRUSTED_PROXIES": env.int("RAGSECURE_TRUSTED_PROXIES", default=0),
    "LLM_BACKEND": env.str("RAGSECURE_LLM_BACKEND", default="extractive"),
    "LLM_BASE_URL": env.str("RAGSECURE_LLM_BASE_URL", default=""),
    "LLM_MODEL": env.str("RAGSECURE_LLM_MODEL", default=""),
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "AUDIT_DIR": env.str("RAGSECURE_AUDIT_DIR", default=str(VAR_DIR / "audit")),
    "AUDIT_WRITER_SOCKET": env.str("RAGSECURE_AUDIT_WRITER_SOCKET", default=""),
    "ANSWER_CANARY": env.str("RAGSECURE_ANSWER_CANARY", default=""),
    # Screening thresholds: set only when the environment names them, else ragsecure.conf's defaults apply
    **{
        name: env.float(f"RAGSECURE_{name}")
        for name in (
            "SCREEN_QUERY_BLOCK_SCORE", "SCREEN_QUERY_FLAG_SCORE",
            "SCREEN_DOCUMENT_BLOCK_SCORE", "SCREEN_DOCUMENT_FLAG_SCORE",
        )
        if f"RAGSECURE_{name}" in env.ENVIRON
    },
}

# ---------------------------------------------------------------------------
# Security headers (hardened further in production)
# ---------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "audit_stream": {"class": "audit.stream.AuditStreamHandler"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "ragsecure": {"level": "INFO"},
        # The audit stream (JSON lines, var/audit/audit.jsonl): add a handler here to ship it to a SIEM.
        "ragsecure.audit.stream": {"handlers": ["audit_stream"], "level": "INFO", "propagate": False},
        "django.request": {"level": "ERROR"},
    },
}
