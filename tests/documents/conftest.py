"""Fixtures shared by the document and query API tests: Alice's token, and a second user, Bob."""

import pytest

from tests.conftest import obtain


@pytest.fixture
def access(tokens) -> str:
    return tokens["access"]


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def bob_access(api, bob) -> str:
    return obtain(api, "bob")["access"]
