"""Reads for accounts: the `me` view of a caller."""

from accounts.authentication import Principal
from accounts.models import Tier
from accounts.tokens import AccessToken


def tier_get(*, tier_id: int | None) -> Tier | None:
    """The tier row, read fresh (tiers are never copied into tokens)."""
    if tier_id is None:
        return None
    return Tier.objects.filter(pk=tier_id).first()


def user_me(*, principal: Principal, token: AccessToken) -> dict:
    """What a caller may know about itself: tier, effective scopes, this token, remaining usage."""
    return {
        "username": principal.username,
        "tier": tier_get(tier_id=principal.tier_id),
        "scopes": sorted(principal.scopes),
        "token": {"jti": token["jti"], "exp": token["exp"], "scopes": list(token.scopes)},
        # Metering of requests and LLM tokens reports here once rate limiting is enabled.
        "usage": {"requests_remaining": None, "tokens_remaining_today": None},
    }
