"""simplejwt tokens signed by the key ring: `kid` in the header, an `alg` allow-list, required claims, settings read per use."""

import re
from datetime import timedelta
from typing import Any

import jwt
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken, TokenError
from rest_framework_simplejwt.tokens import Token

from accounts.keyring import KeyRingError, key_ring, verification_key_for
from ragsecure.conf import ragsecure_settings

KID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SUBJECT_PATTERN = re.compile(r"^[1-9][0-9]{0,17}$")  # a positive BigAutoField id, ASCII digits only
COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
REQUIRED_CLAIMS = ("exp", "iat", "jti", "sub", "aud", "iss", "token_type", "scopes", "gen", "fam")


class KeyRingTokenBackend(TokenBackend):
    """simplejwt's TokenBackend, signing with the ring's active key and verifying by `kid` with allow-listed algorithms."""

    def __init__(self) -> None:  # noqa: D107 - configuration is read per call, not captured here
        self.jwks_client = None
        self.json_encoder = None

    @property
    def algorithm(self) -> str:
        return ragsecure_settings.JWT_ALGORITHM

    @property
    def audience(self) -> str:
        return ragsecure_settings.JWT_AUDIENCE

    @property
    def issuer(self) -> str:
        return ragsecure_settings.JWT_ISSUER

    @property
    def leeway(self) -> timedelta:
        return timedelta(seconds=ragsecure_settings.JWT_LEEWAY_SECONDS)

    def encode(self, payload: dict[str, Any]) -> str:
        """Sign `payload` (plus `aud` and `iss`) with the active key; the header names its `kid`."""
        ring = key_ring()
        claims = {**payload, "aud": self.audience, "iss": self.issuer}
        return jwt.encode(claims, ring.active.private_key, algorithm=self.algorithm, headers={"kid": ring.active.kid, "typ": "JWT"})

    def decode(self, token: Any, verify: bool = True) -> dict[str, Any]:
        """Return the verified payload; raise TokenBackendExpiredToken or TokenBackendError (never decodes unverified)."""
        if not verify:
            raise TokenBackendError("Unverified decoding is not supported")
        if isinstance(token, bytes):
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                raise TokenBackendError("Token is invalid") from None
        if (
            not isinstance(token, str)
            or len(token) > ragsecure_settings.JWT_MAX_TOKEN_BYTES
            or not COMPACT_JWS.fullmatch(token)
        ):
            raise TokenBackendError("Token is invalid")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenBackendError("Token is invalid") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in ragsecure_settings.JWT_ALLOWED_ALGORITHMS:
            raise TokenBackendError("Token algorithm is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not KID_PATTERN.fullmatch(kid):
            raise TokenBackendError("Token key id is invalid")
        try:
            key = verification_key_for(kid)
        except KeyRingError:
            raise TokenBackendError("Token cannot be verified") from None
        if key is None:
            raise TokenBackendError("Token key id is unknown")
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_signature": True, "strict_aud": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenBackendExpiredToken("Token is expired") from None
        except jwt.InvalidTokenError:
            raise TokenBackendError("Token is invalid") from None


token_backend = KeyRingTokenBackend()


class RagsecureToken(Token):
    """A simplejwt Token using the key-ring backend and checking ragsecure's claim types."""

    def get_token_backend(self) -> KeyRingTokenBackend:
        return token_backend

    def verify(self) -> None:
        """Run simplejwt's checks (expiry, `jti`, token type), then the types of ragsecure's own claims."""
        super().verify()
        payload = self.payload
        scopes = payload.get("scopes")
        if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
            raise TokenError("Token scopes are invalid")
        if not isinstance(payload.get("gen"), int) or isinstance(payload.get("gen"), bool):
            raise TokenError("Token generation is invalid")
        if not isinstance(payload.get("sub"), str) or not SUBJECT_PATTERN.fullmatch(payload["sub"]):
            raise TokenError("Token subject is invalid")
        if not isinstance(payload.get("jti"), str) or not KID_PATTERN.fullmatch(payload["jti"]):
            raise TokenError("Token id is invalid")
        if not isinstance(payload.get("fam"), str) or not KID_PATTERN.fullmatch(payload["fam"]):
            raise TokenError("Token family is invalid")

    @property
    def user_id(self) -> int:
        return int(self.payload["sub"])

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.payload["scopes"])


class AccessToken(RagsecureToken):
    """A short-lived bearer token for API calls."""

    token_type = "access"

    @property
    def lifetime(self) -> timedelta:
        return ragsecure_settings.ACCESS_TOKEN_LIFETIME


class RefreshToken(RagsecureToken):
    """A single-use token exchanged for a new access/refresh pair at the refresh endpoint."""

    token_type = "refresh"

    @property
    def lifetime(self) -> timedelta:
        return ragsecure_settings.REFRESH_TOKEN_LIFETIME

