"""Local settings: work with no environment at all; local secrets live in var/ (git-ignored)."""

import secrets as _random

from ragsecure.secrets.base import SecretNotFound
from ragsecure.secrets.env import EnvSecretsBackend
from ragsecure.secrets.file import FileSecretsBackend

from .base import *  # noqa: F403
from .base import RAGSECURE, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)


def _local_secret_key() -> str:
    """The Django secret key from the environment or var/secrets, created there on first use."""
    for backend in (EnvSecretsBackend(), FileSecretsBackend(RAGSECURE["SECRETS_DIR"])):
        try:
            return backend.get("django-secret-key")
        except SecretNotFound:
            continue
    value = _random.token_urlsafe(50)
    FileSecretsBackend(RAGSECURE["SECRETS_DIR"]).put("django-secret-key", value)
    return value


SECRET_KEY = _local_secret_key()
