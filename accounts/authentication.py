"""Bearer JWT authentication: verifies the token, then checks revocation and user state with no database read when Redis is warm."""

import re

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.models import TokenUser

from accounts.api_keys import ApiKeyRecord, ApiKeyUnavailable, api_key_record, api_key_touch, digest_matches, parse_key
from accounts.ratelimit import RateDecision, ip_rate_key, rate_limit_hit
from accounts.revocation import UserState, access_token_check
from accounts.tokens import AccessToken
from audit.context import audit_verdict
from ragsecure.conf import ragsecure_settings
from ragsecure.errors import AuthenticationFailed, RateLimited, ServiceUnavailable, TokenExpired, TokenInvalid, TokenRevoked
from ragsecure.net import client_ip

# Failed authentications per client IP and minute before they are answered 429 (ANONYMOUS_RATES["auth_failures"]).
DEFAULT_AUTH_FAILURES_PER_MINUTE = 30

_WHITESPACE = re.compile(r"\s")


class Principal(TokenUser):
    """The authenticated caller, built from the verified token (or API key) and the user's cached state."""

    auth_kind = "jwt"

    def __init__(self, token: AccessToken, state: UserState, rate: RateDecision | None = None) -> None:
        super().__init__(token)
        self.state = state
        self.rate = rate
        # Effective scopes: what the token carries AND the user still holds.
        self.scopes = frozenset(token.scopes) & state.scopes

    @property
    def id(self) -> int:
        return self.state.id

    @property
    def pk(self) -> int:
        return self.state.id

    @property
    def username(self) -> str:
        return self.state.username

    @property
    def tier_id(self) -> int | None:
        return self.state.tier_id

    @property
    def is_staff(self) -> bool:
        return False

    @property
    def is_superuser(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.username

    def __getattr__(self, attr: str):
        # TokenUser answers unknown attributes from the token's claims; a principal must not.
        raise AttributeError(attr)


class BearerTokenAuthentication(JWTAuthentication):
    """Authenticates `Authorization: Bearer <access token>`; refresh tokens, revoked tokens and inactive users are refused."""

    www_authenticate_realm = "ragsecure"

    def authenticate(self, request: Request) -> tuple[Principal, AccessToken] | None:
        """Return (principal, token) for a Bearer header, None for another scheme; raise for a bad bearer token."""
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        credentials = credentials.strip()
        try:
            if not credentials or _WHITESPACE.search(credentials):
                raise TokenInvalid()
            token = self.get_validated_token(credentials)
            principal = self.get_user(token)
        except AuthenticationFailed:
            authentication_failure_limit(request)
            raise
        if principal.rate is not None:
            # For the RateLimit-* headers, whatever the view then answers.
            request._request.rate_decision = principal.rate
        return principal, token

    def get_validated_token(self, raw_token: str) -> AccessToken:
        """Return the verified access token; raise TokenExpired or TokenInvalid."""
        try:
            return AccessToken(raw_token)
        except ExpiredTokenError:
            raise TokenExpired() from None
        except TokenError:
            raise TokenInvalid() from None

    def get_user(self, validated_token: AccessToken) -> Principal:
        """Return the principal; raise TokenRevoked when the token, its family or all the user's tokens
        were revoked, or the user is gone or inactive."""
        check = access_token_check(
            user_id=validated_token.user_id,
            jti=validated_token["jti"],
            family_id=validated_token["fam"],
            count_request=True,
            token_generation=validated_token["gen"],
        )
        state = check.state
        if (
            check.revoked
            or state is None
            or not state.is_active
            or state.token_generation != validated_token["gen"]
        ):
            raise TokenRevoked()
        return Principal(validated_token, state, check.rate)



class ApiKeyCredential(dict):
    """What an API key stands for, shaped like an access token's claims for the layers that read them (jti, exp, scopes)."""

    def __init__(self, record: ApiKeyRecord) -> None:
        super().__init__(jti=f"ak:{record.key_id}", exp=int(record.expires_at.timestamp()))
        self.scopes = record.scopes
        self.record = record


class ApiKeyPrincipal(Principal):
    """A service authenticated by an API key: the user's tier, documents and current grants apply."""

    auth_kind = "api_key"


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates `Authorization: ApiKey rsk_<key_id>_<secret>` for service callers."""

    keyword = "ApiKey"

    def authenticate(self, request: Request) -> tuple[Principal, ApiKeyCredential] | None:
        """Return (principal, credential) for an ApiKey header, None for another scheme; raise for a bad, expired or
        revoked key (401 in the error shape, counted against the client IP like a bad token)."""
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        try:
            return self._authenticate(credentials.strip())
        except AuthenticationFailed:
            authentication_failure_limit(request)
            raise

    def _authenticate(self, raw: str) -> tuple[Principal, ApiKeyCredential]:
        parsed = parse_key(raw)
        if parsed is None:
            raise TokenInvalid("The API key is invalid.")
        key_id, secret = parsed
        try:
            record = api_key_record(key_id)
            matches = digest_matches(record, secret)
        except ApiKeyUnavailable:
            raise ServiceUnavailable() from None
        if record is None or not matches:
            raise TokenInvalid("The API key is invalid.")
        if record.revoked:
            raise TokenRevoked("The API key has been revoked.")
        if record.expires_at <= timezone.now():
            raise TokenExpired("The API key has expired.")
        check = access_token_check(user_id=record.user_id, jti=f"ak:{record.key_id}", family_id=record.id.replace("-", ""))
        if check.revoked or check.state is None or not check.state.is_active:
            raise TokenRevoked("The API key has been revoked.")
        api_key_touch(record)
        credential = ApiKeyCredential(record)
        return ApiKeyPrincipal(credential, check.state), credential

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="ragsecure"'


def authentication_failure_limit(request: Request) -> None:
    """Count a failed authentication against the client IP; raise RateLimited once the IP is past its per-minute limit.

    Only failures count: a caller with a valid token behind the same address is never refused for an attacker's guesses.
    """
    limit = int(ragsecure_settings.ANONYMOUS_RATES.get("auth_failures", DEFAULT_AUTH_FAILURES_PER_MINUTE))
    decision = rate_limit_hit(ip_rate_key(client_ip(request), "auth_failures"), limit=limit)
    audit_verdict(
        "rate_limit", {"scope": "ip:auth_failures", "allowed": decision.allowed, "limit": decision.limit, "remaining": decision.remaining}
    )
    if not decision.allowed:
        request._request.rate_decision = decision
        raise RateLimited(headers={"Retry-After": str(decision.retry_after)})
