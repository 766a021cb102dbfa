"""Fixtures shared by the document and query tests: Alice's token, a second user (Bob), and the fake LLM server."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from ragsecure.secrets import secrets_provider
from tests.conftest import obtain
from tests.documents import fake_llm as fake

API_KEY = "sk-test-0123456789abcdefghijklmnopqrstuv"

fake_llm = fake.fake_llm  # the server fixture, used by name


@pytest.fixture
def access(tokens) -> str:
    return tokens["access"]


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def bob_access(api, bob) -> str:
    return obtain(api, "bob")["access"]


@pytest.fixture
def llm_key(monkeypatch):
    """The API key stored with the secrets provider (and removed afterwards)."""
    monkeypatch.delenv("RAGSECURE_SECRET_LLM_API_KEY", raising=False)
    provider = secrets_provider()
    provider.put("llm-api-key", API_KEY)
    yield API_KEY
    (Path(django_settings.RAGSECURE["SECRETS_DIR"]) / "llm-api-key").unlink(missing_ok=True)
    provider.invalidate("llm-api-key")


@pytest.fixture
def llm_settings(settings, fake_llm):
    """Point the openai backend at the fake server with short timeouts and tiny backoff."""

    def configure(**overrides):
        settings.RAGSECURE = {
            **settings.RAGSECURE,
            "LLM_BACKEND": "openai",
            "LLM_BASE_URL": fake_llm.base_url,
            "LLM_MODEL": "fake-model-1",
            "LLM_CONNECT_TIMEOUT_SECONDS": 1.0,
            "LLM_TIMEOUT_SECONDS": 1.0,
            "LLM_MAX_RETRIES": 2,
            "LLM_RETRY_BACKOFF_SECONDS": 0.001,
            "LLM_RETRY_MAX_WAIT_SECONDS": 5.0,
            **overrides,
        }

    configure()
    return configure
