"""The provider chain: asks each backend in turn, caches values for a TTL, serves the last good value when a refresh fails."""

import logging
import threading
import time
from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from ragsecure.conf import ragsecure_settings
from ragsecure.secrets.base import SecretNotFound, SecretsBackend, SecretsError, SecretsUnavailable, validate_secret_name

logger = logging.getLogger("ragsecure.secrets")


class SecretsProvider:
    """Resolves secrets through an ordered chain of backends, with a per-secret TTL cache."""

    def __init__(
        self,
        backends: Sequence[SecretsBackend],
        *,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backends = list(backends)
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        """Return the secret's value; raise SecretNotFound when no backend has it, SecretsUnavailable when unreachable."""
        validate_secret_name(name)
        now = self._clock()
        cached = self._cache.get(name)
        if cached is not None and now - cached[1] < self.ttl:
            return cached[0]
        try:
            value = self._fetch(name)
        except SecretsUnavailable:
            if cached is not None:
                # Keep serving the last good value while the backend is down.
                logger.warning("secret %s: refresh failed, serving the cached value", name)
                return cached[0]
            raise
        with self._lock:
            self._cache[name] = (value, now)
        return value

    def _fetch(self, name: str) -> str:
        unavailable: SecretsUnavailable | None = None
        for backend in self.backends:
            try:
                return backend.get(name)
            except SecretNotFound:
                continue
            except SecretsUnavailable as exc:
                unavailable = exc
        if unavailable is not None:
            raise unavailable
        raise SecretNotFound(name)

    def put(self, name: str, value: str) -> None:
        """Write a new value to the last writable backend of the chain and drop the cached one."""
        writable = [backend for backend in self.backends if backend.writable]
        if not writable:
            raise SecretsError("No writable secrets backend is configured")
        writable[-1].put(name, value)
        self.invalidate(name)

    def invalidate(self, name: str | None = None) -> None:
        """Forget one cached secret (or all), so the next read goes to the backends."""
        with self._lock:
            if name is None:
                self._cache.clear()
            else:
                self._cache.pop(name, None)


def build_backends(backend: str, *, directory: str, prefix: str) -> list[SecretsBackend]:
    """The chain for a configured backend name: the environment first, then the named store."""
    from ragsecure.secrets.env import EnvSecretsBackend
    from ragsecure.secrets.file import FileSecretsBackend

    if backend == "env":
        return [EnvSecretsBackend()]
    if backend == "file":
        return [EnvSecretsBackend(), FileSecretsBackend(directory)]
    if backend == "aws":
        try:
            from ragsecure.secrets.aws import AwsSecretsBackend
        except ImportError as exc:
            raise SecretsError("The aws secrets backend is not available in this build") from exc
        return [EnvSecretsBackend(), AwsSecretsBackend(prefix=prefix)]
    raise SecretsError(f"Unknown secrets backend {backend!r}: expected env, file or aws")


_provider: SecretsProvider | None = None
_provider_config: tuple | None = None
_provider_source: object = None
_provider_lock = threading.Lock()


def secrets_provider() -> SecretsProvider:
    """The process-wide provider for the current settings (rebuilt when they change)."""
    global _provider, _provider_config, _provider_source
    source = getattr(settings, "RAGSECURE", None)
    if _provider is not None and source is _provider_source:
        # The same settings object as when the provider was built (a changed setting is a new object, and
        # override_settings also resets the provider): no need to compare the configuration again.
        return _provider
    config = (
        ragsecure_settings.SECRETS_BACKEND,
        str(ragsecure_settings.SECRETS_DIR),
        ragsecure_settings.AWS_SECRET_PREFIX,
        float(ragsecure_settings.SECRETS_CACHE_TTL),
    )
    if _provider is None or config != _provider_config:
        with _provider_lock:
            if _provider is None or config != _provider_config:
                backend, directory, prefix, ttl = config
                _provider = SecretsProvider(build_backends(backend, directory=directory, prefix=prefix), ttl=ttl)
                _provider_config = config
    _provider_source = source
    return _provider


def get_secret(name: str) -> str:
    """Shortcut for secrets_provider().get(name)."""
    return secrets_provider().get(name)


@receiver(setting_changed)
def _reset_provider(*, setting: str, **kwargs) -> None:
    global _provider, _provider_config, _provider_source
    if setting == "RAGSECURE":
        _provider = None
        _provider_config = None
        _provider_source = None
