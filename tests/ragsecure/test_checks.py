"""System checks: misconfigured secrets backends and JWT algorithms are reported with stable ids."""

import pytest

from ragsecure.checks import check_jwt_algorithms, check_secrets_backend


@pytest.fixture
def ragsecure_override(settings):
    def override(**values) -> None:
        settings.RAGSECURE = {**settings.RAGSECURE, **values}

    return override


def ids(messages) -> list[str]:
    return [message.id for message in messages]


def test_default_configuration_passes():
    assert check_secrets_backend(None) == []
    assert check_jwt_algorithms(None) == []


@pytest.mark.parametrize("backend", ["vault", "", "FILE", "../file"])
def test_unknown_secrets_backend_is_e001(ragsecure_override, backend):
    ragsecure_override(SECRETS_BACKEND=backend)
    assert ids(check_secrets_backend(None)) == ["ragsecure.E001"]


@pytest.mark.parametrize("backend", ["env", "file", "aws"])
def test_known_secrets_backends_pass(ragsecure_override, backend):
    ragsecure_override(SECRETS_BACKEND=backend)
    assert check_secrets_backend(None) == []


@pytest.mark.parametrize("weak", ["HS256", "HS512", "none"])
def test_symmetric_or_none_algorithm_allowed_is_e002(ragsecure_override, weak):
    ragsecure_override(JWT_ALLOWED_ALGORITHMS=("EdDSA", weak))
    messages = check_jwt_algorithms(None)
    assert ids(messages) == ["ragsecure.E002"]
    assert weak in messages[0].msg


def test_signing_algorithm_not_allowed_is_e003(ragsecure_override):
    ragsecure_override(JWT_ALGORITHM="EdDSA", JWT_ALLOWED_ALGORITHMS=("ES256",))
    assert ids(check_jwt_algorithms(None)) == ["ragsecure.E003"]


def test_hs256_signing_with_hs256_allowed_is_e002(ragsecure_override):
    ragsecure_override(JWT_ALGORITHM="HS256", JWT_ALLOWED_ALGORITHMS=("EdDSA", "HS256"))
    assert ids(check_jwt_algorithms(None)) == ["ragsecure.E002"]


def test_only_none_allowed_reports_e002_and_e003(ragsecure_override):
    ragsecure_override(JWT_ALLOWED_ALGORITHMS=("none",))
    assert sorted(ids(check_jwt_algorithms(None))) == ["ragsecure.E002", "ragsecure.E003"]


def test_checks_are_errors_not_warnings(ragsecure_override):
    from django.core.checks import ERROR

    ragsecure_override(SECRETS_BACKEND="vault", JWT_ALLOWED_ALGORITHMS=("none",))
    for message in check_secrets_backend(None) + check_jwt_algorithms(None):
        assert message.level >= ERROR
