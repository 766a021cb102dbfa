"""Reads for accounts: the `me` view of a caller."""

from accounts.authentication import Principal
from accounts.budgets import budget_used
from accounts.models import Tier, User
from accounts.ratelimit import rate_limit_count, user_rate_key
from accounts.tokens import AccessToken


def tier_get(*, tier_id: int | None) -> Tier | None:
    """The tier row, read fresh (tiers are never copied into tokens)."""
    if tier_id is None:
        return None
    return Tier.objects.filter(pk=tier_id).first()


def user_usage(*, user_id: int, tier: Tier | None) -> dict:
    """What is left of the user's limits: requests this minute (rolling), LLM tokens today (UTC), retrieved bytes this hour;
    and what their documents take."""
    stored = User.objects.filter(pk=user_id).values("documents_stored", "bytes_stored").first() or {
        "documents_stored": 0, "bytes_stored": 0,
    }
    if tier is None:
        return {"requests_remaining": 0, "tokens_remaining_today": 0, "retrieved_bytes_remaining": 0, **stored}
    requests = rate_limit_count(user_rate_key(user_id), window_seconds=60)
    tokens = budget_used(user_id=user_id, kind="llm_tokens", window_seconds=86400)
    retrieved = budget_used(user_id=user_id, kind="retrieved_bytes", window_seconds=3600)
    return {
        "requests_remaining": max(0, tier.requests_per_minute - requests),
        "tokens_remaining_today": max(0, tier.llm_tokens_per_day - tokens),
        "retrieved_bytes_remaining": max(0, tier.retrieved_bytes_per_hour - retrieved),
        **stored,
    }


def user_me(*, principal: Principal, token: AccessToken) -> dict:
    """What a caller may know about itself: tier, effective scopes, this token, remaining usage."""
    tier = tier_get(tier_id=principal.tier_id)
    return {
        "username": principal.username,
        "tier": tier,
        "scopes": sorted(principal.scopes),
        "token": {"jti": token["jti"], "exp": token["exp"], "scopes": list(token.scopes)},
        "usage": user_usage(user_id=principal.pk, tier=tier),
    }
