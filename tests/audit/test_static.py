"""Static files the admin loads are served without an audit entry; a failed static request still writes one."""

import pytest

from audit.models import AuditEntry
from tests.accounts.test_admin_login import STAFF_PASSWORD, sign_in

pytestmark = [pytest.mark.redis, pytest.mark.database]


@pytest.fixture
def superuser(transactional_db):
    from accounts.models import User

    return User.objects.create_superuser(username="root", password=STAFF_PASSWORD)


def test_a_served_static_file_writes_no_entry_but_a_static_scan_does(superuser, settings):
    """The admin's CSS and scripts were 80% of all entries; a served file now writes none, a failed one still does."""
    settings.WHITENOISE_USE_FINDERS = True  # serve the apps' static files, as collectstatic's copy is served in production
    settings.WHITENOISE_AUTOREFRESH = True
    client, _ = sign_in(STAFF_PASSWORD)
    before = AuditEntry.objects.count()
    served = client.get("/static/admin/css/base.css")
    assert served.status_code == 200
    b"".join(served.streaming_content)
    assert AuditEntry.objects.count() == before
    missing = client.get("/static/../../etc/passwd")
    assert missing.status_code == 404
    assert AuditEntry.objects.filter(request_id=missing["X-Request-ID"]).exists()
