"""Planted secret values never leave the secrets provider: not in a log line, an audit row, the audit stream or a
response body, whatever the requests (good, bad, failing upstream) and management commands do with them."""

import io
import json
import logging
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.keyring import key_ring
from audit.models import AuditEntry
from audit.stream import stream_path
from ragsecure.secrets import secrets_provider
from tests.conftest import PASSWORD, obtain

pytestmark = [pytest.mark.redis, pytest.mark.database]
PLANTED = {
    "llm-api-key": "sk-planted-llm-key-5e1f0c9a7b3d",
    "database-password": "planted-db-password-8c2e4a6f",
}


@pytest.fixture
def planted(monkeypatch, settings):
    provider = secrets_provider()
    for name, value in PLANTED.items():
        monkeypatch.delenv(f"RAGSECURE_SECRET_{name.upper().replace('-', '_')}", raising=False)
        provider.put(name, value)
    # The answering backend points at a closed port: every query fails upstream, with the key in hand.
    settings.RAGSECURE = {**settings.RAGSECURE, "LLM_BACKEND": "openai", "LLM_BASE_URL": "http://127.0.0.1:1/v1", "LLM_MODEL": "m",
                          "LLM_MAX_RETRIES": 0, "LLM_CONNECT_TIMEOUT_SECONDS": 0.3}
    yield
    for name in PLANTED:
        Path(provider.backends[-1].directory, name).unlink(missing_ok=True)
        provider.invalidate(name)


def secret_values() -> list[str]:
    provider = secrets_provider()
    values = list(PLANTED.values()) + [provider.get("audit-hmac-key"), provider.get("api-key-hmac-key")]
    ring = key_ring()
    from cryptography.hazmat.primitives import serialization

    for key in ring.keys.values():
        pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        values.append(pem.decode().splitlines()[1])  # the base64 body of the private key
    return values


def test_no_secret_value_reaches_logs_audit_rows_the_stream_or_responses(planted, api, user, caplog):
    bodies = []
    with caplog.at_level(logging.DEBUG):
        tokens = obtain(api, user.username)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access']}"}
        api.post("/api/v1/documents/", {"title": "Refunds", "content": "Refunds are issued within 14 days."}, format="json", **headers)
        for response in (
            api.post("/api/v1/query/", {"query": "How long do refunds take?"}, format="json", **headers),  # upstream down: 503
            api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION="Bearer not.a.token"),
            api.get("/api/v1/auth/me/", HTTP_AUTHORIZATION="ApiKey rsk_aaaaaaaaaaaa_" + "b" * 43),
            api.post("/api/v1/auth/token/", {"username": user.username, "password": "wrong-" + PASSWORD}, format="json"),
            api.get("/.well-known/jwks.json"),
            api.get("/readyz"),
        ):
            bodies.append(response.content.decode(errors="replace"))
        out = io.StringIO()
        call_command("create_api_key", user.username, "--name", "svc", stdout=out)
        # Its verdict depends on what earlier tests left in the shared stream; what it prints is what matters here.
        verify_out, verify_err = io.StringIO(), io.StringIO()
        try:
            call_command("verify_audit_chain", stdout=verify_out, stderr=verify_err)
        except CommandError:
            pass
    assert json.loads(bodies[0])["error"]["code"] == "service_unavailable"  # the query met the failing upstream, key in hand
    rows = json.dumps(list(AuditEntry.objects.values()), default=str)
    stream = stream_path().read_text() if stream_path().exists() else ""
    places = {
        "logs": caplog.text, "audit rows": rows, "audit stream": stream, "responses": "\n".join(bodies),
        "command output": out.getvalue() + verify_out.getvalue() + verify_err.getvalue(),
    }
    for value in secret_values():
        for where, text in places.items():
            assert value not in text, f"a secret value is in the {where}"
