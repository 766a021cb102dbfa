"""The aws secrets backend against a real local Secrets Manager endpoint (moto's server mode), not an in-process patch."""

import logging
import os
import traceback

import boto3
import pytest

from ragsecure.secrets.aws import PREVIOUS, AwsSecretsBackend, secretsmanager_client
from ragsecure.secrets.base import SecretNotFound, SecretsUnavailable
from ragsecure.secrets.provider import SecretsProvider, build_backends
from tests.moto_server import CREDENTIALS, moto_server

PREFIX = "ragsecure-test/"
PLANTED = "planted-secret-value-7f3a9c1e2b"


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def aws_env(endpoint, monkeypatch):
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    client = secretsmanager_client()
    for page in client.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            client.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
    return client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_reads_the_current_version(aws_env):
    aws_env.create_secret(Name=f"{PREFIX}audit-hmac-key", SecretString="first-value")
    assert AwsSecretsBackend(prefix=PREFIX).get("audit-hmac-key") == "first-value"


def test_a_missing_secret_is_not_found(aws_env):
    with pytest.raises(SecretNotFound):
        AwsSecretsBackend(prefix=PREFIX).get("llm-api-key")


def test_put_makes_a_new_current_and_keeps_the_previous(aws_env):
    backend = AwsSecretsBackend(prefix=PREFIX)
    backend.put("django-secret-key", "old-key")
    backend.put("django-secret-key", "new-key")
    assert backend.get("django-secret-key") == "new-key"
    assert backend.get_previous("django-secret-key") == "old-key"
    assert backend.get_stage("django-secret-key", PREVIOUS) == "old-key"


def test_a_pending_version_is_not_served_until_promoted(aws_env):
    aws_env.create_secret(Name=f"{PREFIX}jwt-signing-keys", SecretString="current")
    aws_env.put_secret_value(SecretId=f"{PREFIX}jwt-signing-keys", SecretString="pending", VersionStages=["AWSPENDING"])
    backend = AwsSecretsBackend(prefix=PREFIX)
    assert backend.get("jwt-signing-keys") == "current"
    assert backend.get_stage("jwt-signing-keys", "AWSPENDING") == "pending"


def test_the_provider_serves_the_cached_value_while_aws_is_down_and_backs_off(aws_env, monkeypatch):
    clock = Clock()
    aws_env.create_secret(Name=f"{PREFIX}audit-hmac-key", SecretString="cached-value")
    backend = AwsSecretsBackend(prefix=PREFIX, clock=clock)
    provider = SecretsProvider([backend], ttl=10, clock=clock)
    assert provider.get("audit-hmac-key") == "cached-value"

    calls = []
    real = backend.client.get_secret_value

    def down(**kwargs):
        calls.append(kwargs)
        raise real.__self__.exceptions.InternalServiceError({"Error": {"Code": "InternalServiceError"}}, "GetSecretValue")

    monkeypatch.setattr(backend.client, "get_secret_value", down)
    clock.now += 11
    assert provider.get("audit-hmac-key") == "cached-value"
    assert len(calls) == 1
    provider.invalidate()
    with pytest.raises(SecretsUnavailable):
        provider.get("audit-hmac-key")
    assert len(calls) == 1  # backing off: AWS was not asked again at once
    clock.now += 2
    monkeypatch.setattr(backend.client, "get_secret_value", real)
    assert provider.get("audit-hmac-key") == "cached-value"


def test_an_unreachable_endpoint_is_unavailable_naming_no_value(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    with pytest.raises(SecretsUnavailable) as caught:
        AwsSecretsBackend(prefix=PREFIX).get("audit-hmac-key")
    assert "audit-hmac-key" in str(caught.value)


def test_denied_access_is_unavailable_with_the_code_and_never_the_value(aws_env, monkeypatch, caplog):
    aws_env.create_secret(Name=f"{PREFIX}llm-api-key", SecretString=PLANTED)
    backend = AwsSecretsBackend(prefix=PREFIX)

    def denied(**kwargs):
        raise backend.client.exceptions.ClientError({"Error": {"Code": "AccessDeniedException", "Message": PLANTED}}, "GetSecretValue")

    monkeypatch.setattr(backend.client, "get_secret_value", denied)
    with caplog.at_level(logging.DEBUG), pytest.raises(SecretsUnavailable) as caught:
        backend.get("llm-api-key")
    assert "AccessDeniedException" in str(caught.value)
    assert PLANTED not in str(caught.value) and PLANTED not in caplog.text
    printed = "".join(traceback.format_exception(caught.value))
    assert "AccessDeniedException" in printed and PLANTED not in printed


def test_the_refresh_after_an_unknown_kid_is_rate_limited(aws_env):
    clock = Clock()
    aws_env.create_secret(Name=f"{PREFIX}jwt-signing-keys", SecretString="ring-1")
    provider = SecretsProvider([AwsSecretsBackend(prefix=PREFIX, clock=clock)], ttl=300, clock=clock)
    assert provider.get("jwt-signing-keys") == "ring-1"
    aws_env.put_secret_value(SecretId=f"{PREFIX}jwt-signing-keys", SecretString="ring-2")

    assert provider.refresh("jwt-signing-keys", min_interval=5)
    assert provider.get("jwt-signing-keys") == "ring-2"
    assert not provider.refresh("jwt-signing-keys", min_interval=5)
    clock.now += 5
    assert provider.refresh("jwt-signing-keys", min_interval=5)


def test_production_settings_read_every_secret_from_aws(aws_env, endpoint, tmp_path):
    """SECRET_KEY comes from AWSCURRENT and SECRET_KEY_FALLBACKS from AWSPREVIOUS; a missing secret stops start-up by name."""
    import subprocess
    import sys

    initial = {"django-secret-key": "old-django-key-" + "x" * 40, "audit-hmac-key": "a" * 48, "api-key-hmac-key": "b" * 48}
    for name, value in initial.items():
        aws_env.create_secret(Name=f"{PREFIX}{name}", SecretString=value)
    aws_env.put_secret_value(SecretId=f"{PREFIX}django-secret-key", SecretString="new-django-key-" + "y" * 40)
    env = {
        **os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "DJANGO_SETTINGS_MODULE": "ragsecure.settings.production",
        "RAGSECURE_SECRETS_BACKEND": "aws", "RAGSECURE_AWS_SECRET_PREFIX": PREFIX, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "DJANGO_ALLOWED_HOSTS": "api.example.com", "REDIS_URL": "",
    }
    code = "from django.conf import settings; print(settings.SECRET_KEY[:15], [k[:15] for k in settings.SECRET_KEY_FALLBACKS])"
    missing = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], env=env, capture_output=True, text=True)
    assert missing.returncode != 0 and "jwt-signing-keys" in missing.stderr and "old-django-key" not in missing.stderr

    aws_env.create_secret(Name=f"{PREFIX}jwt-signing-keys", SecretString=_key_ring_json())
    started = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {code}"], env=env, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr[-2000:]
    assert started.stdout.strip() == "new-django-key- ['old-django-key-']"


def _key_ring_json() -> str:
    from accounts.keyring import rotated_key_ring, serialise_key_ring

    return serialise_key_ring(rotated_key_ring(None))


def test_the_backend_is_built_for_the_aws_setting():
    backends = build_backends("aws", directory="/nonexistent", prefix=PREFIX)
    assert [backend.label for backend in backends] == ["env", "aws"]
    assert backends[1].prefix == PREFIX
    assert isinstance(boto3.__version__, str)
