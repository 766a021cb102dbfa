"""Secrets from environment variables: `jwt-signing-keys` is read from RAGSECURE_SECRET_JWT_SIGNING_KEYS."""

import os
from collections.abc import Mapping

from ragsecure.secrets.base import SecretNotFound, SecretsBackend, validate_secret_name


def env_variable_name(name: str) -> str:
    """The environment variable that holds the secret `name`."""
    return "RAGSECURE_SECRET_" + validate_secret_name(name).upper().replace("-", "_")


class EnvSecretsBackend(SecretsBackend):
    """Reads secrets from the process environment."""

    label = "env"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def get(self, name: str) -> str:
        value = self._environ.get(env_variable_name(name))
        if not value:
            raise SecretNotFound(name)
        return value
