"""Production settings: DEBUG off, every secret required, hardened transport and cookies."""

from django.core.exceptions import ImproperlyConfigured

from ragsecure.secrets.base import SecretsError
from ragsecure.secrets.provider import SecretsProvider, build_backends

from .base import *  # noqa: F403
from .base import DATABASES, RAGSECURE, env

DEBUG = False


_provider = SecretsProvider(
    build_backends(RAGSECURE["SECRETS_BACKEND"], directory=RAGSECURE["SECRETS_DIR"], prefix=RAGSECURE["AWS_SECRET_PREFIX"])
)


def _required_secret(name: str) -> str:
    try:
        return _provider.get(name)
    except SecretsError as exc:
        raise ImproperlyConfigured(
            f"The secret {name!r} is required in production and could not be read "
            f"from the {RAGSECURE['SECRETS_BACKEND']!r} backend ({type(exc).__name__}: {exc})."
        ) from None


SECRET_KEY = _required_secret("django-secret-key")
# Sessions and signatures made with the key a rotation replaced (AWSPREVIOUS) stay valid while they last.
_previous_secret_key = _provider.get_previous("django-secret-key")
SECRET_KEY_FALLBACKS = [_previous_secret_key] if _previous_secret_key and _previous_secret_key != SECRET_KEY else []
# Present at start-up or not at all: the service never runs half-configured.
for _name in ("jwt-signing-keys", "audit-hmac-key", "api-key-hmac-key"):
    _required_secret(_name)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and not DATABASES["default"].get("PASSWORD"):
    _required_secret("database-password")
    # Read at every new connection: a rotated password is used without a restart.
    DATABASES["default"]["ENGINE"] = "ragsecure.db.postgresql"

# ---------------------------------------------------------------------------
# Transport and cookies
# ---------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if RAGSECURE["TRUSTED_PROXIES"] else None
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 8 * 3600
