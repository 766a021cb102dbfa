"""Throttle classes: authenticated callers by their tier, anonymous endpoints by client IP."""

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.authentication import Principal
from accounts.ratelimit import RateDecision, ip_rate_key, rate_limit_hit, user_rate_key
from audit.context import audit_verdict
from ragsecure.conf import ragsecure_settings
from ragsecure.net import client_ip


def _remember(request: Request, decision: RateDecision, scope: str) -> None:
    request._request.rate_decision = decision
    audit_verdict("rate_limit", {"scope": scope, "allowed": decision.allowed, "limit": decision.limit, "remaining": decision.remaining})


class TierRateThrottle(BaseThrottle):
    """Limits an authenticated caller to its tier's requests per minute (counted with the token check when possible)."""

    decision: RateDecision | None = None

    def allow_request(self, request: Request, view) -> bool:
        """Return whether the request is within the caller's tier limit (True for callers without a token)."""
        principal = request.user
        if not isinstance(principal, Principal):
            return True
        decision = principal.rate
        if decision is None:
            decision = rate_limit_hit(user_rate_key(principal.pk), limit=principal.state.requests_per_minute)
        self.decision = decision
        _remember(request, decision, "user")
        return decision.allowed

    def wait(self) -> float | None:
        return self.decision.retry_after if self.decision else None


class ClientIpThrottle(BaseThrottle):
    """Limits anonymous endpoints per client IP; the view names its group in `ip_rate_scope`."""

    decision: RateDecision | None = None

    def allow_request(self, request: Request, view) -> bool:
        """Return whether this client IP is within the per-minute limit of the view's group."""
        scope = getattr(view, "ip_rate_scope", "public")
        limit = int(ragsecure_settings.ANONYMOUS_RATES.get(scope, 0))
        self.decision = rate_limit_hit(ip_rate_key(client_ip(request), scope), limit=limit)
        _remember(request, self.decision, f"ip:{scope}")
        return self.decision.allowed

    def wait(self) -> float | None:
        return self.decision.retry_after if self.decision else None
