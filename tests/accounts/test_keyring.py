"""The signing key ring: round trip, RFC 7638 kids, malformed secrets, parse-once caching, pruning, public-only JWKS."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

import accounts.keyring as keyring_module
from accounts.keyring import (
    SECRET_NAME,
    KeyRingError,
    jwk_thumbprint,
    key_ring,
    key_ring_store,
    parse_key_ring,
    promoted_key_ring,
    rotated_key_ring,
    serialise_key_ring,
    staged_key_ring,
    verification_key_for,
)
from ragsecure.conf import ragsecure_settings
from ragsecure.secrets import secrets_provider

T0 = datetime(2030, 1, 1, tzinfo=UTC)

# RFC 8037, appendix A.1 (the Ed25519 private key) and A.3 (its RFC 7638 thumbprint).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.fixture
def restore_key_ring():
    """Put the session's key ring back after a test that replaces it."""
    original = secrets_provider().get(SECRET_NAME)
    yield
    secrets_provider().put(SECRET_NAME, original)


def pem(private_key) -> str:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(
        "ascii"
    )


def public_raw(key) -> bytes:
    return key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_round_trip_preserves_keys_and_active_kid():
    ring = rotated_key_ring(rotated_key_ring(None, now=T0), now=T0 + timedelta(hours=1))
    parsed = parse_key_ring(serialise_key_ring(ring))
    assert parsed.active.kid == ring.active.kid
    assert set(parsed.keys) == set(ring.keys) and len(parsed.keys) == 2
    for kid, key in ring.keys.items():
        assert public_raw(parsed.keys[kid]) == public_raw(key)
        assert parsed.keys[kid].created_at == key.created_at
        assert parsed.keys[kid].retired_at == key.retired_at


def test_round_trip_parsed_key_signs_verifiably():
    ring = parse_key_ring(serialise_key_ring(rotated_key_ring(None)))
    signature = ring.active.private_key.sign(b"message")
    ring.verification_key(ring.active.kid).verify(signature, b"message")


def test_kid_is_rfc7638_thumbprint_of_rfc8037_key():
    private_key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(RFC8037_D + "="))
    assert jwk_thumbprint(private_key.public_key()) == RFC8037_THUMBPRINT


def test_parsed_kid_is_thumbprint_not_stored_label():
    private_key = ed25519.Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(RFC8037_D + "="))
    raw = json.dumps({"active_kid": RFC8037_THUMBPRINT, "keys": [{"kid": "attacker-chosen", "private_key": pem(private_key)}]})
    assert list(parse_key_ring(raw).keys) == [RFC8037_THUMBPRINT]


def test_distinct_keys_have_distinct_kids():
    ring = rotated_key_ring(rotated_key_ring(None, now=T0), now=T0)
    assert len(ring.keys) == 2


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "",
        "[]",
        "null",
        json.dumps({"keys": []}),
        json.dumps({"active_kid": "x"}),
        json.dumps({"active_kid": "x", "keys": [{"private_key": "not a pem"}]}),
        json.dumps({"active_kid": "x", "keys": [{"kid": "x"}]}),
    ],
    ids=["text", "empty", "list", "null", "no-active", "no-keys", "bad-pem", "no-private-key"],
)
def test_malformed_secret_raises_keyring_error(raw):
    with pytest.raises(KeyRingError):
        parse_key_ring(raw)


def test_missing_active_kid_raises_keyring_error():
    document = json.loads(serialise_key_ring(rotated_key_ring(None)))
    del document["active_kid"]
    with pytest.raises(KeyRingError):
        parse_key_ring(json.dumps(document))


def test_active_kid_not_in_ring_raises_keyring_error():
    document = json.loads(serialise_key_ring(rotated_key_ring(None)))
    document["active_kid"] = RFC8037_THUMBPRINT
    with pytest.raises(KeyRingError):
        parse_key_ring(json.dumps(document))


def test_ec_p256_key_raises_keyring_error():
    raw = json.dumps({"active_kid": "x", "keys": [{"private_key": pem(ec.generate_private_key(ec.SECP256R1()))}]})
    with pytest.raises(KeyRingError, match="Ed25519"):
        parse_key_ring(raw)


def test_error_message_does_not_echo_secret():
    secret_looking = "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    with pytest.raises(KeyRingError) as raised:
        parse_key_ring(json.dumps({"active_kid": "x", "keys": [{"private_key": secret_looking}]}))
    assert "TOPSECRETMATERIAL" not in str(raised.value)


def test_key_ring_unavailable_secret_raises_keyring_error(settings, tmp_path):
    settings.RAGSECURE = {**settings.RAGSECURE, "SECRETS_DIR": str(tmp_path / "empty")}
    with pytest.raises(KeyRingError, match="bootstrap"):
        key_ring()


def test_key_ring_malformed_secret_in_environment(monkeypatch):
    monkeypatch.setenv("RAGSECURE_SECRET_JWT_SIGNING_KEYS", "{not json")
    secrets_provider().invalidate()
    with pytest.raises(KeyRingError):
        key_ring()


def test_key_ring_parsed_once_per_content(monkeypatch):
    parses = []
    real_parse = keyring_module.parse_key_ring

    def counting_parse(raw):
        parses.append(raw)
        return real_parse(raw)

    monkeypatch.setattr(keyring_module, "parse_key_ring", counting_parse)
    first = key_ring()
    for _ in range(5):
        secrets_provider().invalidate()  # even a re-read of unchanged content does not re-parse
        assert key_ring() is first
    assert len(parses) <= 1


def test_key_ring_follows_stored_change(restore_key_ring):
    before = key_ring()
    key_ring_store(rotated_key_ring(before))
    after = key_ring()
    assert after.active.kid != before.active.kid
    assert before.active.kid in after.keys
    assert key_ring() is after


def test_key_ring_follows_external_change_after_invalidate(restore_key_ring):
    before = key_ring()
    replacement = rotated_key_ring(None)
    backend = [backend for backend in secrets_provider().backends if backend.writable][-1]
    backend.put(SECRET_NAME, serialise_key_ring(replacement))  # behind the provider's back
    secrets_provider().invalidate()
    assert key_ring().active.kid == replacement.active.kid != before.active.kid


def test_rotation_retires_old_active_key():
    first = rotated_key_ring(None, now=T0)
    second = rotated_key_ring(first, now=T0 + timedelta(hours=1))
    assert second.active.retired_at is None
    assert second.keys[first.active.kid].retired_at == T0 + timedelta(hours=1)


def test_rotation_keeps_keys_within_refresh_lifetime():
    horizon = ragsecure_settings.REFRESH_TOKEN_LIFETIME
    first = rotated_key_ring(None, now=T0)
    second = rotated_key_ring(first, now=T0)
    third = rotated_key_ring(second, now=T0 + horizon)
    assert first.active.kid in third.keys


def test_rotation_prunes_keys_retired_longer_than_refresh_lifetime():
    horizon = ragsecure_settings.REFRESH_TOKEN_LIFETIME + timedelta(seconds=ragsecure_settings.JWT_LEEWAY_SECONDS)
    first = rotated_key_ring(None, now=T0)
    second = rotated_key_ring(first, now=T0)  # first retired at T0
    third = rotated_key_ring(second, now=T0 + horizon + timedelta(seconds=1))
    assert first.active.kid not in third.keys
    assert second.active.kid in third.keys  # retired just now
    assert third.active.kid in third.keys and len(third.keys) == 2


def test_jwks_has_no_private_material():
    ring = rotated_key_ring(rotated_key_ring(None))
    jwks = ring.jwks()
    assert [key["kid"] for key in jwks["keys"]][0] == ring.active.kid
    assert {key["kid"] for key in jwks["keys"]} == set(ring.keys)
    for jwk in jwks["keys"]:
        assert "d" not in jwk
        assert set(jwk) <= {"kty", "crv", "x", "kid", "use", "alg"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    serialised = json.dumps(jwks)
    assert "PRIVATE" not in serialised
    for key in ring.keys.values():
        private_raw = key.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        assert base64.urlsafe_b64encode(private_raw).rstrip(b"=").decode() not in serialised


# -- rotation without failed requests --------------------------------------------------------------------------------


def test_a_staged_key_is_published_but_does_not_sign():
    ring = rotated_key_ring(None, T0)
    staged = staged_key_ring(ring, T0 + timedelta(days=2))
    assert staged.active.kid == ring.active.kid
    assert staged.staged is not None and staged.staged.kid != ring.active.kid
    assert [key["kid"] for key in staged.jwks()["keys"]] == [ring.active.kid, staged.staged.kid]
    assert staged.verification_key(staged.staged.kid) is not None


def test_promotion_makes_the_staged_key_sign_and_retires_the_old_one():
    ring = staged_key_ring(rotated_key_ring(None, T0), T0 + timedelta(days=2))
    promoted = promoted_key_ring(ring, T0 + timedelta(days=2, minutes=6))
    assert promoted.active.kid == ring.staged.kid
    assert promoted.staged is None
    old = promoted.keys[ring.active.kid]
    assert old.retired_at == T0 + timedelta(days=2, minutes=6)
    assert promoted.last_retired_at == old.retired_at
    assert parse_key_ring(serialise_key_ring(promoted)).active.kid == promoted.active.kid


def test_promotion_without_a_staged_key_is_refused():
    with pytest.raises(KeyRingError, match="staged"):
        promoted_key_ring(rotated_key_ring(None, T0))


def test_a_staged_ring_survives_storage():
    ring = staged_key_ring(rotated_key_ring(None, T0), T0 + timedelta(hours=1))
    parsed = parse_key_ring(serialise_key_ring(ring))
    assert parsed.staged.kid == ring.staged.kid and parsed.active.kid == ring.active.kid


def test_a_kid_the_cached_ring_lacks_is_looked_up_again_once(restore_key_ring, monkeypatch, settings):
    """Another worker promoted a key this one's cached ring has not seen: it re-reads the ring instead of refusing."""
    settings.RAGSECURE = {**settings.RAGSECURE, "SECRETS_CACHE_TTL": 300, "KEY_RING_REFRESH_SECONDS": 60}
    provider = secrets_provider()
    cached = key_ring()
    newer = rotated_key_ring(cached)
    provider.backends[-1].put(SECRET_NAME, serialise_key_ring(newer))  # written behind this process's cache
    assert key_ring().active.kid == cached.active.kid  # still cached

    assert verification_key_for(newer.active.kid) is not None
    assert key_ring().active.kid == newer.active.kid


def test_unknown_kids_refresh_the_ring_at_most_once_per_interval(restore_key_ring, monkeypatch, settings):
    settings.RAGSECURE = {**settings.RAGSECURE, "KEY_RING_REFRESH_SECONDS": 60}
    reads = []
    backend = secrets_provider().backends[-1]
    real_get = backend.get
    monkeypatch.setattr(backend, "get", lambda name: reads.append(name) or real_get(name))
    key_ring()
    reads.clear()
    for number in range(200):
        assert verification_key_for(f"unknown-kid-{number}") is None
    assert reads.count(SECRET_NAME) <= 1
