"""Secrets: env and file backends, safe names, the provider chain, its TTL cache and last-good value on failure."""

import os
import stat

import pytest

from ragsecure.secrets import SecretNotFound, SecretsError, SecretsProvider, SecretsUnavailable
from ragsecure.secrets.env import EnvSecretsBackend, env_variable_name
from ragsecure.secrets.file import FileSecretsBackend
from ragsecure.secrets.provider import build_backends

NAME = "audit-hmac-key"
UNSAFE_NAMES = ["../x", "a/b", "", ".", "..", "/etc/passwd", "..\\x", "x\x00y", ".hidden", "a" * 64, "Upper"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secrets_dir(tmp_path):
    return tmp_path / "secrets"


@pytest.fixture
def file_backend(secrets_dir) -> FileSecretsBackend:
    return FileSecretsBackend(secrets_dir)


# ---------------------------------------------------------------------------
# env backend
# ---------------------------------------------------------------------------


def test_env_variable_name_mapping():
    assert env_variable_name("jwt-signing-keys") == "RAGSECURE_SECRET_JWT_SIGNING_KEYS"


def test_env_backend_reads_mapped_variable(monkeypatch):
    monkeypatch.setenv("RAGSECURE_SECRET_AUDIT_HMAC_KEY", "from-env")
    assert EnvSecretsBackend().get(NAME) == "from-env"


def test_env_backend_missing_or_empty_is_not_found():
    backend = EnvSecretsBackend({"RAGSECURE_SECRET_LLM_API_KEY": ""})
    with pytest.raises(SecretNotFound):
        backend.get("llm-api-key")
    with pytest.raises(SecretNotFound):
        backend.get(NAME)


def test_env_backend_is_read_only():
    with pytest.raises(SecretsError):
        EnvSecretsBackend({}).put(NAME, "value")


# ---------------------------------------------------------------------------
# file backend
# ---------------------------------------------------------------------------


def test_file_put_then_get(file_backend):
    file_backend.put(NAME, "s3cret-value")
    assert file_backend.get(NAME) == "s3cret-value"


def test_file_mode_0600_and_directory_0700(file_backend, secrets_dir):
    file_backend.put(NAME, "s3cret-value")
    assert stat.S_IMODE(os.stat(secrets_dir / NAME).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(secrets_dir).st_mode) == 0o700


def test_file_put_replaces_value_and_leaves_no_temporary_files(file_backend, secrets_dir):
    file_backend.put(NAME, "first")
    file_backend.put(NAME, "second")
    assert file_backend.get(NAME) == "second"
    assert sorted(os.listdir(secrets_dir)) == [NAME]


def test_file_put_failing_midway_keeps_old_value(file_backend, secrets_dir, monkeypatch):
    file_backend.put(NAME, "old-value")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        file_backend.put(NAME, "new-value")
    monkeypatch.undo()
    assert file_backend.get(NAME) == "old-value"
    assert sorted(os.listdir(secrets_dir)) == [NAME]


@pytest.mark.parametrize("content", ["", "\n", "   \n"])
def test_file_empty_is_not_found(file_backend, secrets_dir, content):
    secrets_dir.mkdir()
    (secrets_dir / NAME).write_text(content)
    with pytest.raises(SecretNotFound):
        file_backend.get(NAME)


def test_file_missing_is_not_found(file_backend):
    with pytest.raises(SecretNotFound):
        file_backend.get(NAME)


def test_file_unreadable_is_unavailable(file_backend, secrets_dir):
    (secrets_dir / NAME).mkdir(parents=True)
    with pytest.raises(SecretsUnavailable):
        file_backend.get(NAME)


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_name_rejected_by_file_get(file_backend, name):
    with pytest.raises(SecretsError, match="Invalid secret name"):
        file_backend.get(name)


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_name_rejected_by_file_put(file_backend, name):
    with pytest.raises(SecretsError, match="Invalid secret name"):
        file_backend.put(name, "value")


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_name_rejected_by_env_and_provider(name):
    with pytest.raises(SecretsError, match="Invalid secret name"):
        EnvSecretsBackend({}).get(name)
    with pytest.raises(SecretsError, match="Invalid secret name"):
        SecretsProvider([EnvSecretsBackend({})]).get(name)


@pytest.mark.parametrize("name", [None, 42, b"audit-hmac-key"])
def test_non_string_name_rejected(file_backend, name):
    with pytest.raises(SecretsError):
        file_backend.get(name)


def test_trailing_newline_name_rejected(file_backend, secrets_dir):
    # `$` in a regex also matches before a final newline: the name must match in full.
    with pytest.raises(SecretsError, match="Invalid secret name"):
        file_backend.put(NAME + "\n", "value")
    assert not (secrets_dir / (NAME + "\n")).exists()


def test_traversal_cannot_read_outside_directory(tmp_path, file_backend, secrets_dir):
    (tmp_path / "outside").write_text("not yours")
    secrets_dir.mkdir()
    with pytest.raises(SecretsError) as raised:
        file_backend.get("../outside")
    assert "not yours" not in str(raised.value)


def test_traversal_cannot_write_outside_directory(tmp_path, file_backend):
    with pytest.raises(SecretsError):
        file_backend.put("../planted", "value")
    assert not (tmp_path / "planted").exists()


# ---------------------------------------------------------------------------
# provider chain
# ---------------------------------------------------------------------------


def test_env_overrides_file(file_backend):
    file_backend.put(NAME, "from-file")
    provider = SecretsProvider([EnvSecretsBackend({"RAGSECURE_SECRET_AUDIT_HMAC_KEY": "from-env"}), file_backend])
    assert provider.get(NAME) == "from-env"


def test_file_used_when_env_lacks_secret(file_backend):
    file_backend.put(NAME, "from-file")
    provider = SecretsProvider([EnvSecretsBackend({}), file_backend])
    assert provider.get(NAME) == "from-file"


def test_not_found_when_no_backend_has_it(file_backend):
    provider = SecretsProvider([EnvSecretsBackend({}), file_backend])
    with pytest.raises(SecretNotFound):
        provider.get(NAME)


def test_value_cached_until_ttl_then_reread(file_backend):
    clock = Clock()
    provider = SecretsProvider([file_backend], ttl=60, clock=clock)
    file_backend.put(NAME, "v1")
    assert provider.get(NAME) == "v1"
    file_backend.put(NAME, "v2")
    clock.now += 59
    assert provider.get(NAME) == "v1"
    clock.now += 1
    assert provider.get(NAME) == "v2"


def test_cached_value_served_when_backend_becomes_unavailable(file_backend, secrets_dir):
    clock = Clock()
    provider = SecretsProvider([file_backend], ttl=60, clock=clock)
    file_backend.put(NAME, "last-good")
    assert provider.get(NAME) == "last-good"
    (secrets_dir / NAME).unlink()
    (secrets_dir / NAME).mkdir()  # reading it now fails with an OSError
    clock.now += 3600
    assert provider.get(NAME) == "last-good"


def test_unavailable_without_cached_value_raises(file_backend, secrets_dir):
    (secrets_dir / NAME).mkdir(parents=True)
    provider = SecretsProvider([file_backend])
    with pytest.raises(SecretsUnavailable):
        provider.get(NAME)


def test_unavailable_backend_is_not_reported_as_not_found(file_backend, secrets_dir):
    (secrets_dir / NAME).mkdir(parents=True)
    provider = SecretsProvider([file_backend, EnvSecretsBackend({})])
    with pytest.raises(SecretsUnavailable):
        provider.get(NAME)


def test_later_backend_answers_when_earlier_one_is_unavailable(tmp_path, file_backend):
    broken_dir = tmp_path / "broken"
    (broken_dir / NAME).mkdir(parents=True)
    file_backend.put(NAME, "from-second")
    provider = SecretsProvider([FileSecretsBackend(broken_dir), file_backend])
    assert provider.get(NAME) == "from-second"


def test_put_writes_to_writable_backend_and_drops_cache(file_backend):
    clock = Clock()
    provider = SecretsProvider([EnvSecretsBackend({}), file_backend], ttl=300, clock=clock)
    file_backend.put(NAME, "v1")
    assert provider.get(NAME) == "v1"
    provider.put(NAME, "v2")
    assert file_backend.get(NAME) == "v2"
    assert provider.get(NAME) == "v2"


def test_put_without_writable_backend_fails():
    with pytest.raises(SecretsError):
        SecretsProvider([EnvSecretsBackend({})]).put(NAME, "value")


def test_invalidate_forces_reread(file_backend):
    provider = SecretsProvider([file_backend], ttl=300, clock=Clock())
    file_backend.put(NAME, "v1")
    assert provider.get(NAME) == "v1"
    file_backend.put(NAME, "v2")
    provider.invalidate(NAME)
    assert provider.get(NAME) == "v2"


# ---------------------------------------------------------------------------
# build_backends
# ---------------------------------------------------------------------------


def test_build_backends_file_is_env_then_file(tmp_path):
    backends = build_backends("file", directory=str(tmp_path), prefix="ragsecure/")
    assert [type(backend) for backend in backends] == [EnvSecretsBackend, FileSecretsBackend]


def test_build_backends_env_only():
    assert [type(backend) for backend in build_backends("env", directory="", prefix="")] == [EnvSecretsBackend]


@pytest.mark.parametrize("name", ["vault", "", "FILE", "ENV"])
def test_build_backends_unknown_name(name):
    with pytest.raises(SecretsError, match="Unknown secrets backend"):
        build_backends(name, directory="/tmp", prefix="ragsecure/")


def test_the_process_provider_follows_a_settings_change(settings, tmp_path):
    """secrets_provider() is rebuilt when RAGSECURE changes (a new settings object), and reused while it does not."""
    from ragsecure.secrets.provider import secrets_provider

    first = secrets_provider()
    assert secrets_provider() is first
    (tmp_path / "probe-secret").write_text("from-the-new-directory")
    settings.RAGSECURE = {**settings.RAGSECURE, "SECRETS_BACKEND": "file", "SECRETS_DIR": str(tmp_path)}
    second = secrets_provider()
    assert second is not first
    assert second.get("probe-secret") == "from-the-new-directory"
    assert secrets_provider() is second


def test_a_new_settings_object_is_noticed_without_a_signal(monkeypatch, tmp_path):
    """Replacing RAGSECURE without override_settings (no setting_changed signal): the provider follows the new object,
    and keeps its cache when the new object configures the same thing."""
    from django.conf import settings as django_settings

    from ragsecure.secrets.provider import secrets_provider

    before = secrets_provider()
    monkeypatch.setattr(django_settings, "RAGSECURE", dict(django_settings.RAGSECURE))
    assert secrets_provider() is before  # an equal configuration: the same provider and its cache
    (tmp_path / "probe-secret").write_text("from-the-new-directory")
    monkeypatch.setattr(django_settings, "RAGSECURE",
                        {**django_settings.RAGSECURE, "SECRETS_BACKEND": "file", "SECRETS_DIR": str(tmp_path)})
    after = secrets_provider()
    assert after is not before and after.get("probe-secret") == "from-the-new-directory"
