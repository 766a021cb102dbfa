"""System checks with stable ids that catch dangerous misconfiguration before the service starts."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from ragsecure.conf import ragsecure_settings

SECRETS_BACKENDS = ("env", "file", "aws")
ASYMMETRIC_ALGORITHMS = ("EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")


def _is_production() -> bool:
    return settings.SETTINGS_MODULE.endswith(".production") if getattr(settings, "SETTINGS_MODULE", None) else False


@register(Tags.security)
def check_secrets_backend(app_configs, **kwargs) -> list:
    backend = ragsecure_settings.SECRETS_BACKEND
    if backend not in SECRETS_BACKENDS:
        return [Error(f"RAGSECURE_SECRETS_BACKEND is {backend!r}", hint="Use env, file or aws.", id="ragsecure.E001")]
    return []


@register(Tags.security)
def check_jwt_algorithms(app_configs, **kwargs) -> list:
    allowed = tuple(ragsecure_settings.JWT_ALLOWED_ALGORITHMS)
    errors = []
    weak = [name for name in allowed if name not in ASYMMETRIC_ALGORITHMS]
    if weak:
        errors.append(
            Error(
                f"JWT_ALLOWED_ALGORITHMS includes {', '.join(weak)}",
                hint="Only asymmetric algorithms may verify tokens; 'none' and HMAC allow forgery.",
                id="ragsecure.E002",
            )
        )
    if ragsecure_settings.JWT_ALGORITHM not in allowed:
        errors.append(Error("JWT_ALGORITHM is not in JWT_ALLOWED_ALGORITHMS", id="ragsecure.E003"))
    return errors


@register(Tags.security, deploy=True)
def check_production_cache(app_configs, **kwargs) -> list:
    if not _is_production():
        return []
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if not backend.startswith("django_redis"):
        return [
            Error(
                "The default cache is not Redis in production",
                hint="Set REDIS_URL: rate limits and revocation must be shared by every worker.",
                id="ragsecure.E004",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_signing_keys(app_configs, **kwargs) -> list:
    from accounts.keyring import KeyRingError, key_ring

    try:
        ring = key_ring()
    except KeyRingError as exc:
        return [Warning(str(exc), hint="Run `manage.py bootstrap` or provision jwt-signing-keys.", id="ragsecure.W001")]
    for key in ring.keys.values():
        if key.kid == settings.SECRET_KEY:
            return [Error("A signing key id equals SECRET_KEY", id="ragsecure.E005")]
    return []


@register(Tags.security, deploy=True)
def check_debug_off(app_configs, **kwargs) -> list:
    if _is_production() and settings.DEBUG:
        return [Error("DEBUG is on in production", id="ragsecure.E006")]
    return []


@register(Tags.security, deploy=True)
def check_redis_eviction(app_configs, **kwargs) -> list:
    """Evicting keys would drop rate-limit logs, budgets and revocation markers: warn unless `noeviction`."""
    from ragsecure.redis_gate import RedisUnavailable, redis_configured, redis_gate

    if not _is_production() or not redis_configured():
        return []
    try:
        policy = redis_gate.run(lambda client: client.config_get("maxmemory-policy")).get("maxmemory-policy", "")
    except RedisUnavailable:
        return [Warning("Redis did not answer; its maxmemory-policy was not checked", id="ragsecure.W003")]
    except Exception:  # noqa: BLE001 - managed Redis services may refuse CONFIG
        return []
    if policy and policy != "noeviction":
        return [
            Warning(
                f"Redis maxmemory-policy is {policy!r}",
                hint="Use noeviction: evicted keys would reset rate limits and budgets and drop revocation markers.",
                id="ragsecure.W002",
            )
        ]
    return []
