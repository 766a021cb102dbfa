"""The provider chain: asks each backend in turn, caches values for a TTL, serves the last good value when a refresh fails."""

import logging
import threading
import time
from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from ragsecure.conf import DEFAULTS
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
        self._previous: dict[str, tuple[str | None, float]] = {}
        self._refreshed: dict[str, float] = {}
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

    def get_previous(self, name: str) -> str | None:
        """The secret's previous value where a backend keeps one (for SECRET_KEY_FALLBACKS), cached like the current one."""
        validate_secret_name(name)
        now = self._clock()
        cached = self._previous.get(name)
        if cached is not None and now - cached[1] < self.ttl:
            return cached[0]
        value = None
        for backend in self.backends:
            try:
                backend.get(name)
            except SecretNotFound:
                continue
            except SecretsUnavailable:
                return cached[0] if cached is not None else None
            try:
                value = backend.get_previous(name)
            except SecretsUnavailable:
                return cached[0] if cached is not None else None
            break
        with self._lock:
            self._previous[name] = (value, now)
        return value

    def refresh(self, name: str, *, min_interval: float) -> bool:
        """Drop the cached value so the next read asks the backends, at most once per `min_interval` seconds per secret.

        For a caller that met something the cached value cannot explain (an unknown `kid`): True when it may read again,
        False when a refresh happened too recently (a flood of unknown `kid`s cannot hammer the backend).
        """
        now = self._clock()
        with self._lock:
            last = self._refreshed.get(name)
            if last is not None and now - last < min_interval:
                return False
            self._refreshed[name] = now
            self._cache.pop(name, None)
            self._previous.pop(name, None)
        return True

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
                self._previous.clear()
            else:
                self._cache.pop(name, None)
                self._previous.pop(name, None)


def build_backends(backend: str, *, directory: str, prefix: str) -> list[SecretsBackend]:
    """The chain for a configured backend name: the environment first, then the named store."""
    from ragsecure.secrets.env import EnvSecretsBackend
    from ragsecure.secrets.file import FileSecretsBackend

    if backend == "env":
        return [EnvSecretsBackend()]
    if backend == "file":
        return [EnvSecretsBackend(), FileSecretsBackend(directory)]
    if backend == "aws":
        from ragsecure.secrets.aws import AwsSecretsBackend

        return [EnvSecretsBackend(), AwsSecretsBackend(prefix=prefix)]
    raise SecretsError(f"Unknown secrets backend {backend!r}: expected env, file or aws")


# (settings object it was built for, its configuration, the provider), replaced as a whole under the lock.
_state: tuple[object, tuple, SecretsProvider] | None = None
_provider_lock = threading.Lock()


def secrets_provider() -> SecretsProvider:
    """The process-wide provider for the current settings (rebuilt when they change).

    A changed setting is a new RAGSECURE object (a deployment's settings, override_settings), so while the object is
    the one the provider was built for, its configuration is not read again.
    """
    global _state
    source = getattr(settings, "RAGSECURE", None)
    state = _state
    if state is not None and state[0] is source:
        return state[2]
    values = {**DEFAULTS, **(source or {})}
    config = (
        values["SECRETS_BACKEND"], str(values["SECRETS_DIR"]), values["AWS_SECRET_PREFIX"], float(values["SECRETS_CACHE_TTL"]),
    )
    with _provider_lock:
        state = _state
        if state is None or state[1] != config:
            backend, directory, prefix, ttl = config
            state = (source, config, SecretsProvider(build_backends(backend, directory=directory, prefix=prefix), ttl=ttl))
        else:
            state = (source, config, state[2])
        _state = state
    return state[2]


def get_secret(name: str) -> str:
    """Shortcut for secrets_provider().get(name)."""
    return secrets_provider().get(name)


@receiver(setting_changed)
def _reset_provider(*, setting: str, **kwargs) -> None:
    global _state
    if setting == "RAGSECURE":
        with _provider_lock:
            _state = None
