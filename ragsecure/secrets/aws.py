"""Secrets in AWS Secrets Manager (boto3): `<prefix><name>`, read by version stage, with a backoff after failures.

Values never appear in a log line, an exception or an error message: only the secret's name and AWS's error code.
"""

import os
import threading
import time
from collections.abc import Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ragsecure.secrets.base import SecretNotFound, SecretsBackend, SecretsUnavailable, validate_secret_name

CURRENT, PREVIOUS, PENDING = "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING"
STAGES = (CURRENT, PREVIOUS, PENDING)
# AWS's answers that mean "this secret (or this version of it) is not there".
_NOT_FOUND = frozenset({"ResourceNotFoundException"})
MIN_BACKOFF, MAX_BACKOFF = 1.0, 60.0


def secretsmanager_client():
    """A Secrets Manager client for boto3's own configuration (AWS_REGION, AWS_ENDPOINT_URL, credentials chain),
    with short timeouts: a request never waits long on AWS, and the provider serves the last good value meanwhile."""
    return boto3.client(
        "secretsmanager",
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"}),
    )


class AwsSecretsBackend(SecretsBackend):
    """Reads (and, for rotation commands, writes) secrets in AWS Secrets Manager."""

    label = "aws"
    writable = True

    def __init__(self, *, prefix: str, client=None, clock: Callable[[], float] = time.monotonic) -> None:
        self.prefix = prefix
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._quiet_until = 0.0

    @property
    def client(self):
        if self._client is None:
            self._client = secretsmanager_client()
        return self._client

    def secret_id(self, name: str) -> str:
        return f"{self.prefix}{validate_secret_name(name)}"

    def get(self, name: str) -> str:
        value = self.get_stage(name, CURRENT)
        if value is None:
            raise SecretNotFound(name)
        return value

    def get_stage(self, name: str, stage: str) -> str | None:
        """The value of the secret's version in `stage` (AWSCURRENT, AWSPREVIOUS or AWSPENDING); None when there is none.

        Raises SecretsUnavailable when AWS cannot be reached or refuses (and, for a while after, without asking it again).
        """
        if stage not in STAGES:
            raise ValueError(f"unknown version stage {stage!r}")
        secret_id = self.secret_id(name)
        self._check_backoff(name)
        try:
            reply = self.client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            if code in _NOT_FOUND:
                self._succeeded()
                return None
            self._failed()
            raise SecretsUnavailable(f"{name}: AWS Secrets Manager refused ({code})") from None
        except BotoCoreError as exc:
            self._failed()
            raise SecretsUnavailable(f"{name}: AWS Secrets Manager unreachable ({type(exc).__name__})") from None
        self._succeeded()
        value = reply.get("SecretString")
        if not isinstance(value, str) or not value.strip():
            return None  # binary or empty: not one of ours
        return value.strip()

    def get_previous(self, name: str) -> str | None:
        return self.get_stage(name, PREVIOUS)

    def put(self, name: str, value: str) -> None:
        """Store a new AWSCURRENT version; the version it replaces becomes AWSPREVIOUS (AWS moves the stages)."""
        secret_id = self.secret_id(name)
        try:
            try:
                self.client.put_secret_value(SecretId=secret_id, SecretString=value)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _NOT_FOUND:
                    raise
                self.client.create_secret(Name=secret_id, SecretString=value)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            raise SecretsUnavailable(f"{name}: AWS Secrets Manager refused the new value ({code})") from None
        except BotoCoreError as exc:
            raise SecretsUnavailable(f"{name}: AWS Secrets Manager unreachable ({type(exc).__name__})") from None

    # -- backoff ----------------------------------------------------------------------------------------------------

    def _check_backoff(self, name: str) -> None:
        if self._clock() < self._quiet_until:
            raise SecretsUnavailable(f"{name}: AWS Secrets Manager failed recently; not asked again yet")

    def _failed(self) -> None:
        with self._lock:
            self._failures += 1
            delay = min(MAX_BACKOFF, MIN_BACKOFF * 2 ** (self._failures - 1))
            self._quiet_until = self._clock() + delay

    def _succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._quiet_until = 0.0
