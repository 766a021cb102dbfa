"""Secrets as files in one private directory, one file per secret, written atomically with mode 0600."""

import os
import tempfile
from pathlib import Path

from ragsecure.secrets.base import SecretNotFound, SecretsBackend, SecretsUnavailable, validate_secret_name


class FileSecretsBackend(SecretsBackend):
    """Reads and writes secrets under a directory (local development and single-host deployments)."""

    label = "file"
    writable = True

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def _path(self, name: str) -> Path:
        return self.directory / validate_secret_name(name)

    def get(self, name: str) -> str:
        path = self._path(name)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise SecretNotFound(name) from None
        except OSError as exc:
            raise SecretsUnavailable(f"{name}: {exc.strerror}") from None
        if not value:
            raise SecretNotFound(name)
        return value

    def put(self, name: str, value: str) -> None:
        path = self._path(name)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
