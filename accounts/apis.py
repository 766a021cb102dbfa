"""Token endpoints (obtain, refresh, revoke), `me`, and the public JWKS."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.authentication import ApiKeyCredential
from accounts.keyring import KeyRingError, key_ring
from accounts.lockout import login_attempt_begin, login_attempt_release, login_failure_record, login_success_record
from accounts.serializers import MeSerializer, RefreshSerializer, TokenObtainSerializer, TokenPairSerializer
from accounts.throttling import ClientIpThrottle
from audit.context import audit_actor, audit_claimed_username, audit_verdict
from ragsecure.errors import AuthenticationFailed, PermissionDenied, RateLimited, ServiceUnavailable
from ragsecure.net import client_ip
from ragsecure.redis_gate import RedisUnavailable, redis_configured, redis_gate


def require_token_services() -> None:
    """Token endpoints fail closed: raise ServiceUnavailable when Redis is configured but not answering."""
    if redis_configured() and not redis_gate.available():
        raise ServiceUnavailable()


def _pair_response(issued: services.IssuedTokens) -> Response:
    body = TokenPairSerializer(
        {
            "access": issued.access,
            "refresh": issued.refresh,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scopes": issued.scopes,
        }
    ).data
    return Response(body, status=status.HTTP_200_OK)


class TokenObtainApi(APIView):
    """Exchange a username and password for an access/refresh pair, optionally down-scoped."""

    audit_action = "auth.token"
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ClientIpThrottle]
    ip_rate_scope = "auth"
    extra_error_codes = ("401",)

    @extend_schema(request=TokenObtainSerializer, responses={200: TokenPairSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        serializer = TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        require_token_services()
        data = serializer.validated_data
        ip = client_ip(request)
        try:
            lockout = login_attempt_begin(username=data["username"], ip=ip)
        except RedisUnavailable:
            raise ServiceUnavailable() from None
        if lockout.locked:
            audit_claimed_username(data["username"])
            audit_verdict("login_lockout", {"retry_after": lockout.retry_after})
            raise RateLimited("Too many failed sign-ins; retry later.", headers={"Retry-After": str(lockout.retry_after)})
        try:
            user = authenticate(request._request, username=data["username"], password=data["password"])
        except BaseException:
            login_attempt_release(username=data["username"], ip=ip)
            raise
        try:
            if user is None:
                audit_claimed_username(data["username"])
                cooloff = login_failure_record(username=data["username"], ip=ip)
                if cooloff:
                    audit_verdict("login_lockout", {"started": cooloff})
                # Same answer whether the user is unknown, inactive or the password wrong.
                raise AuthenticationFailed("Invalid username or password.")
            login_success_record(username=data["username"], ip=ip)
        except RedisUnavailable:
            raise ServiceUnavailable() from None
        audit_actor(user, auth_kind="password")
        issued = services.token_obtain(user=user, requested_scopes=data.get("scopes"), client_ip=ip)
        return _pair_response(issued)


class TokenRefreshApi(APIView):
    """Exchange a refresh token (consumed, single use) for a new pair with the same or fewer scopes."""

    audit_action = "auth.token_refresh"
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ClientIpThrottle]
    ip_rate_scope = "auth"
    extra_error_codes = ("401",)

    @extend_schema(request=RefreshSerializer, responses={200: TokenPairSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        require_token_services()
        return _pair_response(services.token_refresh(raw_refresh=serializer.validated_data["refresh"]))


class TokenRevokeApi(APIView):
    """Revoke a refresh token's family and the presenting access token."""

    audit_action = "auth.token_revoke"
    required_scopes: tuple[str, ...] = ()

    @extend_schema(request=RefreshSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiKeyCredential):
            raise PermissionDenied("An API key is revoked by an operator (admin or revoke_api_key), not by logging out.")
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # Revoking is the safe direction: it works while Redis is down (the database is authoritative).
        services.token_revoke(raw_refresh=serializer.validated_data["refresh"], access=request.auth, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    """The caller: tier, effective scopes, the presented token and remaining usage."""

    audit_action = "auth.me"
    required_scopes: tuple[str, ...] = ()

    @extend_schema(responses={200: MeSerializer})
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(selectors.user_me(principal=request.user, token=request.auth)).data)


class JwksApi(APIView):
    """The public keys that verify ragsecure's tokens, each with its `kid`."""

    audit_action = "auth.jwks"
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ClientIpThrottle]

    @extend_schema(
        operation_id="jwks",
        auth=[],
        responses={200: {"type": "object", "properties": {"keys": {"type": "array", "items": {"type": "object"}}}}},
    )
    def get(self, request: Request) -> Response:
        try:
            body = key_ring().jwks()
        except KeyRingError:
            raise ServiceUnavailable() from None
        response = Response(body)
        response["Cache-Control"] = "public, max-age=300"
        return response
