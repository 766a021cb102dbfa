"""The JWT signing key ring: Ed25519 keys with `kid`s, served by the secrets provider and parsed once per change."""

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.utils import timezone

from ragsecure.conf import ragsecure_settings
from ragsecure.secrets import SecretsError, get_secret, secrets_provider

SECRET_NAME = "jwt-signing-keys"
ALGORITHM = "EdDSA"


class KeyRingError(Exception):
    """The key ring secret is missing or malformed."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _public_x(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64url(raw)


def jwk_thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of an Ed25519 public key: the key's `kid`."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _public_x(public_key)}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring; only the active one signs, every one in the ring verifies."""

    kid: str
    private_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey
    created_at: datetime
    retired_at: datetime | None

    def jwk(self) -> dict:
        """The public JWK (no private material)."""
        return {"kty": "OKP", "crv": "Ed25519", "x": _public_x(self.public_key), "kid": self.kid, "use": "sig", "alg": ALGORITHM}


@dataclass(frozen=True)
class KeyRing:
    """The parsed key ring: the active signing key and all verification keys by `kid`."""

    active: SigningKey
    keys: dict[str, SigningKey]

    def verification_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key for `kid`, or None when the ring has no such key."""
        key = self.keys.get(kid)
        return key.public_key if key is not None else None

    @property
    def staged(self) -> SigningKey | None:
        """The key published for verification but not signing yet (the newest, should there be several)."""
        waiting = [key for kid, key in self.keys.items() if kid != self.active.kid and key.retired_at is None]
        return max(waiting, key=lambda key: key.created_at) if waiting else None

    @property
    def last_retired_at(self) -> datetime | None:
        """When the previous active key stopped signing (the last promotion), if any key has."""
        times = [key.retired_at for key in self.keys.values() if key.retired_at is not None]
        return max(times) if times else None

    def jwks(self) -> dict:
        """The JSON Web Key Set of every verification key, active first."""
        ordered = [self.active] + [key for kid, key in self.keys.items() if kid != self.active.kid]
        return {"keys": [key.jwk() for key in ordered]}


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def parse_key_ring(raw: str) -> KeyRing:
    """Parse the key ring secret (JSON); raise KeyRingError when it is unusable."""
    try:
        document = json.loads(raw)
        keys: dict[str, SigningKey] = {}
        for entry in document["keys"]:
            private_key = serialization.load_pem_private_key(entry["private_key"].encode("ascii"), password=None)
            if not isinstance(private_key, Ed25519PrivateKey):
                raise KeyRingError("Only Ed25519 keys are supported")
            public_key = private_key.public_key()
            kid = jwk_thumbprint(public_key)
            keys[kid] = SigningKey(kid, private_key, public_key, _parse_time(entry.get("created_at")), _parse_time(entry.get("retired_at")))
        active = keys[document["active_kid"]]
    except KeyRingError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyRingError(f"The {SECRET_NAME} secret is malformed ({type(exc).__name__})") from None
    return KeyRing(active=active, keys=keys)


def _serialise_key(key: SigningKey) -> dict:
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return {
        "kid": key.kid,
        "alg": ALGORITHM,
        "private_key": pem,
        "created_at": key.created_at.isoformat() if key.created_at else None,
        "retired_at": key.retired_at.isoformat() if key.retired_at else None,
    }


def serialise_key_ring(ring: KeyRing) -> str:
    """The key ring as the JSON stored in the secret."""
    return json.dumps({"active_kid": ring.active.kid, "keys": [_serialise_key(key) for key in ring.keys.values()]}, indent=1)


def new_signing_key(now: datetime | None = None) -> SigningKey:
    """A freshly generated Ed25519 signing key."""
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key()
    return SigningKey(jwk_thumbprint(public_key), private_key, public_key, now or timezone.now(), None)


def _verification_horizon() -> timedelta:
    """How long a retired key keeps verifying: until every token it signed has expired."""
    return ragsecure_settings.REFRESH_TOKEN_LIFETIME + timedelta(seconds=ragsecure_settings.JWT_LEEWAY_SECONDS)


def _with_active(ring: KeyRing | None, active: SigningKey, now: datetime) -> KeyRing:
    """`active` signs from now on; every other key is retired (if it was not) and kept while it may still verify."""
    keep: dict[str, SigningKey] = {active.kid: active}
    if ring is not None:
        for kid, key in ring.keys.items():
            if kid == active.kid:
                continue
            if key.retired_at is None:
                key = SigningKey(key.kid, key.private_key, key.public_key, key.created_at, now)
            if now - key.retired_at <= _verification_horizon():
                keep[kid] = key
    return KeyRing(active=active, keys=keep)


def rotated_key_ring(ring: KeyRing | None, now: datetime | None = None) -> KeyRing:
    """A ring whose new active key signs at once (a first key, or a forced rotation); old keys verify until their tokens expire.

    Other workers may not know the new key for up to a cache TTL: rotate a live service with staged_key_ring and
    promoted_key_ring instead.
    """
    now = now or timezone.now()
    return _with_active(ring, new_signing_key(now), now)


def staged_key_ring(ring: KeyRing, now: datetime | None = None) -> KeyRing:
    """The ring with a new key published for verification only (JWKS and every worker's ring), not signing yet."""
    fresh = new_signing_key(now or timezone.now())
    return KeyRing(active=ring.active, keys={**ring.keys, fresh.kid: fresh})


def promoted_key_ring(ring: KeyRing, now: datetime | None = None) -> KeyRing:
    """The ring whose staged key signs from now on; raise KeyRingError when nothing is staged."""
    staged = ring.staged
    if staged is None:
        raise KeyRingError("No key is staged; stage one first")
    return _with_active(ring, staged, now or timezone.now())


_cache_lock = threading.Lock()
_cached: tuple[str, KeyRing] | None = None


def key_ring() -> KeyRing:
    """The current key ring; re-parsed only when the secret's content changes (so never per request)."""
    global _cached
    try:
        raw = get_secret(SECRET_NAME)
    except SecretsError as exc:
        raise KeyRingError(f"The {SECRET_NAME} secret is unavailable ({type(exc).__name__}); run `manage.py bootstrap`") from None
    cached = _cached
    # The provider hands back the same string object until the secret changes.
    if cached is not None and (cached[0] is raw or cached[0] == raw):
        return cached[1]
    with _cache_lock:
        ring = parse_key_ring(raw)
        _cached = (raw, ring)
    return ring


def verification_key_for(kid: str) -> Ed25519PublicKey | None:
    """The public key for `kid`; for a `kid` the cached ring does not know, the ring is read again once (at most every
    KEY_RING_REFRESH_SECONDS per process, so a flood of unknown `kid`s cannot hammer the secrets backend).

    Raises KeyRingError when the ring is unavailable.
    """
    key = key_ring().verification_key(kid)
    if key is None and secrets_provider().refresh(SECRET_NAME, min_interval=float(ragsecure_settings.KEY_RING_REFRESH_SECONDS)):
        key = key_ring().verification_key(kid)
    return key


def key_ring_store(ring: KeyRing) -> None:
    """Write the ring to the secrets provider's writable backend."""
    secrets_provider().put(SECRET_NAME, serialise_key_ring(ring))
