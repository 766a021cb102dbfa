"""The admin sign-in form under the API's lockout: per username and client IP, with a growing cool-off."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm

from accounts.lockout import login_attempt_begin, login_attempt_release, login_failure_record, login_success_record
from audit.context import audit_claimed_username, audit_outcome, audit_verdict
from ragsecure.net import client_ip
from ragsecure.redis_gate import RedisUnavailable


class LockoutAdminAuthenticationForm(AdminAuthenticationForm):
    """Django's admin sign-in, refused with a plain message while the name is locked out from this address; every
    failure counts toward the lockout and is audited as denied with the name it claimed."""

    def clean(self):
        """Return the cleaned data of a staff sign-in; raise ValidationError for a wrong one or during a lockout."""
        username = self.cleaned_data.get("username")
        if not username or not self.cleaned_data.get("password"):
            return super().clean()
        ip = client_ip(self.request)
        try:
            lockout = login_attempt_begin(username=username, ip=ip)
        except RedisUnavailable:
            raise forms.ValidationError("Signing in is unavailable right now; try again shortly.", code="unavailable") from None
        if lockout.locked:
            audit_claimed_username(username)
            audit_verdict("login_lockout", {"retry_after": lockout.retry_after})
            audit_outcome("throttled")
            raise forms.ValidationError(
                f"Too many failed sign-ins for this account from your address. Try again in {lockout.retry_after} seconds.",
                code="locked",
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            audit_claimed_username(username)
            cooloff = login_failure_record(username=username, ip=ip)
            if cooloff:
                audit_verdict("login_lockout", {"started": cooloff})
            audit_outcome("denied")
            raise
        except BaseException:
            login_attempt_release(username=username, ip=ip)
            raise
        login_success_record(username=username, ip=ip)
        return cleaned
