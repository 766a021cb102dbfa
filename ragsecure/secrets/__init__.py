"""Secrets provider: a chain of backends (environment, file, AWS Secrets Manager) behind a TTL cache."""

from ragsecure.secrets.base import SECRET_NAMES, SecretNotFound, SecretsBackend, SecretsError, SecretsUnavailable
from ragsecure.secrets.provider import SecretsProvider, get_secret, secrets_provider

__all__ = [
    "SECRET_NAMES",
    "SecretNotFound",
    "SecretsBackend",
    "SecretsError",
    "SecretsProvider",
    "SecretsUnavailable",
    "get_secret",
    "secrets_provider",
]
