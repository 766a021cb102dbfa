"""The secrets backend interface and its errors."""

import re
from abc import ABC, abstractmethod

SECRET_NAMES = (
    "django-secret-key",
    "jwt-signing-keys",
    "audit-hmac-key",
    "database-password",
    "llm-api-key",
    "api-key-hmac-key",
)
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class SecretsError(Exception):
    """A secret could not be read or written."""


class SecretNotFound(SecretsError):
    """No backend holds the secret."""


class SecretsUnavailable(SecretsError):
    """A backend could not be reached; the secret may exist."""


def validate_secret_name(name: str) -> str:
    """Return `name` when it is a safe secret name (no path separators, no dots); raise otherwise."""
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise SecretsError(f"Invalid secret name: {name!r}")
    return name


class SecretsBackend(ABC):
    """One place secrets live. Backends never log or echo secret values."""

    label: str = "backend"
    writable: bool = False

    @abstractmethod
    def get(self, name: str) -> str:
        """Return the secret's current value; raise SecretNotFound or SecretsUnavailable."""

    def put(self, name: str, value: str) -> None:
        """Store a new current value for the secret; raise SecretsError where unsupported."""
        raise SecretsError(f"The {self.label} secrets backend is read-only")

    def get_previous(self, name: str) -> str | None:
        """The value the current one replaced, where the backend keeps versions (AWS's AWSPREVIOUS); None otherwise."""
        return None
