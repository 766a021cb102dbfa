"""The documented flow: a user obtains a token, calls `me`, is revoked and refused on the very next request."""

import pytest

from accounts.services import user_tokens_revoke
from tests.conftest import assert_error, bearer

pytestmark = pytest.mark.database


@pytest.mark.redis
def test_token_me_revoke_refused_next_request(api, user, tokens):
    response = api.get("/api/v1/auth/me/", **bearer(tokens["access"]))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"

    user_tokens_revoke(user=user, actor=None, reason="test")

    assert_error(api.get("/api/v1/auth/me/", **bearer(tokens["access"])), 401, "token_revoked")
