"""The RAGSECURE settings namespace, read on every access so that tests and admins can change it."""

from datetime import timedelta
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Secrets
    "SECRETS_BACKEND": "file",
    "SECRETS_DIR": "var/secrets",
    "SECRETS_CACHE_TTL": 300,
    # A token signed by a key this process's cached ring lacks re-reads the ring, at most this often (seconds).
    "KEY_RING_REFRESH_SECONDS": 5.0,
    "AWS_SECRET_PREFIX": "ragsecure/",
    # JWT
    "JWT_ALGORITHM": "EdDSA",
    "JWT_ALLOWED_ALGORITHMS": ("EdDSA",),
    "JWT_ISSUER": "ragsecure",
    "JWT_AUDIENCE": "ragsecure-api",
    "JWT_LEEWAY_SECONDS": 5,
    "JWT_MAX_TOKEN_BYTES": 8192,
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=5),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    # Caches of per-user state and revocations (Redis); seconds
    "USER_STATE_CACHE_TTL": 300,
    "REDIS_RETRY_INTERVAL": 2.0,
    "REDIS_WARNING_INTERVAL": 60.0,
    # Rate limits of anonymous endpoint groups, requests per minute per client IP
    "ANONYMOUS_RATES": {"auth": 30, "public": 300, "auth_failures": 30},
    # Sign-in lockout: FREE_FAILURES per name and IP within WINDOW s, then BASE_COOLOFF s doubling up to
    # MAX_COOLOFF; GLOBAL_FAILURES per name within GLOBAL_WINDOW s hold off every IP the name never signed in from.
    "LOGIN_LOCKOUT": {
        "FREE_FAILURES": 5, "BASE_COOLOFF": 30, "MAX_COOLOFF": 900, "WINDOW": 900,
        "GLOBAL_FAILURES": 50, "GLOBAL_WINDOW": 3600, "KNOWN_IP_DAYS": 30,
    },
    # Requests
    "TRUSTED_PROXIES": 0,
    "MAX_REQUEST_BYTES": 4 * 1024 * 1024,
    "PASSWORD_MAX_LENGTH": 1024,
    # Audit
    "AUDIT_DIR": "var/audit",
    "AUDIT_CHECKPOINT_EVERY": 100,
    "AUDIT_CHECKPOINT_SECONDS": 60.0,
    "AUDIT_PROMPT_LIMIT": 2048,
    "AUDIT_CHECKPOINT_AT_EXIT": True,
    "AUDIT_CHECKPOINT_TIMER": True,
    # Floods of alike requests (per-IP and per-user 429s, failed authentication, 404 scans, health probes) keep one full
    # entry and one summary per client IP, kind and minute; False writes every request in full (unbounded under attack).
    "AUDIT_FLOOD_SUMMARIES": True,
    # Ingestion: passages one document may make (1 MB of prose makes ~850), and uploads one user may have in progress.
    "DOCUMENT_MAX_CHUNKS": 1000,
    "CONCURRENT_UPLOADS_PER_USER": 2,
    # Queries one user may have waiting on the answerer at once (a slow model holds a worker thread each).
    "CONCURRENT_QUERIES_PER_USER": 2,  # a thread per process signs an idle chain's tail after AUDIT_CHECKPOINT_SECONDS
    # The host audit writer's Unix socket (`manage.py audit_writer`); empty: each process writes its own entries.
    "AUDIT_WRITER_SOCKET": "",
    "AUDIT_WRITER_TIMEOUT": 5.0,  # seconds a request waits for the writer before writing its entry itself
    "AUDIT_WRITER_RETRY_SECONDS": 1.0,  # after a failure, how long a process writes directly before trying again
    # Answering
    "LLM_BACKEND": "extractive",
    "LLM_BASE_URL": "",
    "LLM_MODEL": "",
    "LLM_CONNECT_TIMEOUT_SECONDS": 3.0,
    "LLM_TIMEOUT_SECONDS": 15.0,  # read timeout of one attempt
    "LLM_TOTAL_TIMEOUT_SECONDS": 30.0,  # every attempt and wait of one answer together; then 503
    "LLM_MAX_RETRIES": 2,  # retries after the first attempt
    "LLM_RETRY_BACKOFF_SECONDS": 0.5,  # base of the exponential backoff
    "LLM_RETRY_MAX_WAIT_SECONDS": 8.0,  # cap on one wait; a longer Retry-After means give up
    "LLM_MAX_RESPONSE_BYTES": 1_000_000,
    "LLM_MAX_COMPLETION_TOKENS": 1024,  # sent as max_tokens (0: 4096); bounds what one answer can cost
    # Prompt screening: a text whose score reaches BLOCK is refused (a query) or quarantined (a document);
    # one that reaches FLAG passes and is marked. Scores are 0..1.
    "SCREEN_QUERY_BLOCK_SCORE": 0.5,
    "SCREEN_QUERY_FLAG_SCORE": 0.4,
    "SCREEN_DOCUMENT_BLOCK_SCORE": 0.5,
    "SCREEN_DOCUMENT_FLAG_SCORE": 0.4,
    # Answers: a per-deployment canary in the system prompt (derived from SECRET_KEY unless set) that must
    # never come back in an answer.
    "ANSWER_CANARY": "",
}


class RagsecureSettings:
    """Looks each name up in settings.RAGSECURE, falling back to DEFAULTS, at every access."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown ragsecure setting: {name}")
        overrides = getattr(settings, "RAGSECURE", {})
        return overrides.get(name, DEFAULTS[name])


ragsecure_settings = RagsecureSettings()
