"""Forged, tampered and misused JWTs are refused by GET /api/v1/auth/me/ with 401 and an RFC 6750 challenge."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from accounts.keyring import jwk_thumbprint, key_ring
from accounts.models import User
from tests.conftest import assert_error, bearer, obtain

ME = "/api/v1/auth/me/"
INVALID_TOKEN_CHALLENGE = 'Bearer realm="ragsecure", error="invalid_token"'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def segment(document) -> str:
    return b64url(json.dumps(document, separators=(",", ":")).encode())


def claims_for(user: User, *, drop: tuple[str, ...] = (), **overrides) -> dict:
    """Claims shaped like the server's own access tokens, for `user`."""
    now = int(time.time())
    claims = {
        "token_type": "access",
        "exp": now + 300,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "sub": str(user.pk),
        "scopes": ["query:read"],
        "gen": User.objects.get(pk=user.pk).token_generation,
        "fam": uuid.uuid4().hex,
        "aud": "ragsecure-api",
        "iss": "ragsecure",
        **overrides,
    }
    for name in drop:
        del claims[name]
    return claims


def mint(user: User, *, drop: tuple[str, ...] = (), **overrides) -> str:
    """An access token signed with the server's real active key (what only the server can make)."""
    ring = key_ring()
    claims = claims_for(user, drop=drop, **overrides)
    return jwt.encode(claims, ring.active.private_key, algorithm="EdDSA", headers={"kid": ring.active.kid})


def sign_eddsa(header: dict, payload: dict, private_key: Ed25519PrivateKey) -> str:
    """A compact JWS signed by hand, so that any header (non-string kid, crit, jwk) can be sent."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    return f"{signing_input}.{b64url(private_key.sign(signing_input.encode('ascii')))}"


def forge_hs256(secret: bytes, payload: dict, kid: str) -> str:
    """An HS256 token keyed with `secret`, forged by hand (PyJWT refuses public keys as HMAC secrets)."""
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{segment(payload)}"
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def assert_rejected(response, code: str = "token_invalid") -> None:
    assert_error(response, 401, code)
    assert response["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def me(api, token: str):
    return api.get(ME, **bearer(token))


# --- sanity: the helpers make tokens the server accepts, so the refusals below mean something


def test_minted_token_with_real_key_is_accepted(api, user):
    response = me(api, mint(user))
    assert response.status_code == 200, response.content
    assert response.json()["username"] == "alice"


def test_hand_signed_token_with_real_key_is_accepted(api, user):
    ring = key_ring()
    token = sign_eddsa({"alg": "EdDSA", "typ": "JWT", "kid": ring.active.kid}, claims_for(user), ring.active.private_key)
    assert me(api, token).status_code == 200


def test_issued_token_is_accepted(api, tokens):
    assert me(api, tokens["access"]).status_code == 200


# --- alg: none


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", None], ids=["empty-signature", "no-signature-part"])
def test_alg_none_refused(api, user, alg, signature):
    unsigned = f"{segment({'alg': alg, 'typ': 'JWT', 'kid': key_ring().active.kid})}.{segment(claims_for(user))}"
    token = unsigned if signature is None else f"{unsigned}.{signature}"
    assert_rejected(me(api, token))


def test_alg_none_with_trailing_dot_only_refused(api, user):
    header = segment({"alg": "none", "typ": "JWT"})
    assert_rejected(me(api, f"{header}.{segment(claims_for(user))}."))


# --- signature tampering


def test_stripped_signature_refused(api, tokens):
    header, payload, _ = tokens["access"].split(".")
    assert_rejected(me(api, f"{header}.{payload}."))


def test_stripped_signature_and_dot_refused(api, tokens):
    header, payload, _ = tokens["access"].split(".")
    assert_rejected(me(api, f"{header}.{payload}"))


def test_signature_of_another_token_spliced_on_refused(api, user, tokens):
    header, payload, _ = tokens["access"].split(".")
    other_signature = obtain(api, user.username)["access"].split(".")[2]
    assert_rejected(me(api, f"{header}.{payload}.{other_signature}"))


def test_payload_with_widened_scopes_keeping_signature_refused(api, user):
    narrow = obtain(api, user.username, scopes=[])["access"]
    assert me(api, narrow).status_code == 200
    header, payload, signature = narrow.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["scopes"] = ["query:read", "documents:read", "documents:write", "admin"]
    assert_rejected(me(api, f"{header}.{segment(claims)}.{signature}"))


def test_payload_with_other_subject_keeping_signature_refused(api, make_user, user):
    mallory = make_user("mallory")
    header, payload, signature = obtain(api, mallory.username)["access"].split(".")
    claims = json.loads(b64url_decode(payload))
    claims["sub"] = str(user.pk)
    assert_rejected(me(api, f"{header}.{segment(claims)}.{signature}"))


def test_jws_json_serialization_refused(api, tokens):
    header, payload, signature = tokens["access"].split(".")
    flattened = json.dumps({"protected": header, "payload": payload, "signature": signature}, separators=(",", ":"))
    assert_rejected(me(api, flattened))


# --- keys the server does not hold


def test_other_ed25519_key_with_real_kid_refused(api, user):
    token = jwt.encode(claims_for(user), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": key_ring().active.kid})
    assert_rejected(me(api, token))


def test_other_ed25519_key_with_its_own_kid_refused(api, user):
    attacker = Ed25519PrivateKey.generate()
    token = jwt.encode(claims_for(user), attacker, algorithm="EdDSA", headers={"kid": jwk_thumbprint(attacker.public_key())})
    assert_rejected(me(api, token))


def _published_key(api) -> tuple[dict, bytes]:
    response = api.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response.json()["keys"][0], response.content


def _hmac_secrets_from_jwks(api) -> dict[str, bytes]:
    jwk, jwks_document = _published_key(api)
    raw = b64url_decode(jwk["x"])
    public_key = key_ring().active.public_key
    assert raw == public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "raw-32-bytes": raw,
        "x-string": jwk["x"].encode("ascii"),
        "pem": pem,
        "pem-stripped": pem.strip(),
        "jwk-json": json.dumps(jwk).encode(),
        "jwks-json": jwks_document,
    }


@pytest.mark.parametrize("secret_form", ["raw-32-bytes", "x-string", "pem", "pem-stripped", "jwk-json", "jwks-json"])
def test_hs256_keyed_with_published_public_key_refused(api, user, secret_form):
    secret = _hmac_secrets_from_jwks(api)[secret_form]
    assert_rejected(me(api, forge_hs256(secret, claims_for(user), key_ring().active.kid)))


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256"])
def test_other_asymmetric_algorithm_with_real_kid_refused(api, user, algorithm):
    if algorithm == "ES256":
        attacker = ec.generate_private_key(ec.SECP256R1())
    else:
        attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims_for(user), attacker, algorithm=algorithm, headers={"kid": key_ring().active.kid})
    assert_rejected(me(api, token))


def test_crit_header_with_unknown_extension_refused(api, user):
    ring = key_ring()
    header = {"alg": "EdDSA", "typ": "JWT", "kid": ring.active.kid, "crit": ["exp-policy"], "exp-policy": "ignore"}
    assert_rejected(me(api, sign_eddsa(header, claims_for(user), ring.active.private_key)))


def _attacker_jwk(attacker: Ed25519PrivateKey) -> dict:
    x = b64url(attacker.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": jwk_thumbprint(attacker.public_key())}


@pytest.mark.parametrize(
    "embedding",
    ["jwk-real-kid", "jwk-own-kid", "jku-own-kid", "jku-real-kid", "x5u-own-kid"],
)
def test_header_pointing_at_attacker_key_refused(api, user, embedding):
    attacker = Ed25519PrivateKey.generate()
    jwk = _attacker_jwk(attacker)
    kid = key_ring().active.kid if embedding.endswith("real-kid") else jwk["kid"]
    header = {"alg": "EdDSA", "typ": "JWT", "kid": kid}
    if embedding.startswith("jwk"):
        header["jwk"] = jwk
    elif embedding.startswith("jku"):
        header["jku"] = "https://attacker.example/.well-known/jwks.json"
    else:
        header["x5u"] = "https://attacker.example/cert.pem"
    assert_rejected(me(api, sign_eddsa(header, claims_for(user), attacker)))


# --- kid values


@pytest.mark.parametrize(
    "kid",
    [
        "unknown-key-id",
        "../../etc/passwd",
        "' OR 1=1 --",
        "k" * 10 * 1024,
        "",
        12345,
        ["kid"],
        {"kid": "x"},
        None,
        True,
    ],
    ids=["unknown", "path-traversal", "sql", "10kb", "empty", "int", "list", "object", "null", "bool"],
)
def test_bad_kid_refused(api, user, kid):
    ring = key_ring()
    header = {"alg": "EdDSA", "typ": "JWT", "kid": kid}
    assert_rejected(me(api, sign_eddsa(header, claims_for(user), ring.active.private_key)))


def test_missing_kid_refused(api, user):
    ring = key_ring()
    assert_rejected(me(api, sign_eddsa({"alg": "EdDSA", "typ": "JWT"}, claims_for(user), ring.active.private_key)))


# --- claims (signed with the real key: only the claim checks stand in the way)


def test_expired_token_refused_as_expired(api, user):
    now = int(time.time())
    assert_rejected(me(api, mint(user, iat=now - 400, exp=now - 60)), "token_expired")


def test_issued_token_past_its_exp_refused_as_expired(api, user, settings):
    # Expired by construction (lifetime in the past), not by waiting.
    settings.RAGSECURE = {**settings.RAGSECURE, "ACCESS_TOKEN_LIFETIME": timedelta(seconds=-60)}
    access = obtain(api, user.username)["access"]
    assert_rejected(me(api, access), "token_expired")


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "sub", "aud", "iss", "scopes", "gen", "fam", "token_type"])
def test_missing_claim_refused(api, user, claim):
    assert_rejected(me(api, mint(user, drop=(claim,))))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("aud", "another-api"),
        ("aud", ["another-api"]),
        ("aud", ["ragsecure-api", "another-api"]),
        ("iss", "attacker"),
        ("iss", "ragsecure "),
        ("token_type", "refresh"),
        ("token_type", "ACCESS"),
    ],
)
def test_wrong_claim_value_refused(api, user, claim, value):
    assert_rejected(me(api, mint(user, **{claim: value})))


def test_iat_far_in_future_refused(api, user):
    now = int(time.time())
    assert_rejected(me(api, mint(user, iat=now + 3600, exp=now + 3900)))


def test_nbf_in_future_refused(api, user):
    assert_rejected(me(api, mint(user, nbf=int(time.time()) + 3600)))


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("scopes", "query:read"),
        ("scopes", [1]),
        ("scopes", None),
        ("gen", True),
        ("gen", "0"),
        ("gen", None),
        ("jti", 123),
        ("jti", "../x"),
        ("fam", ["a"]),
        ("fam", "not a family"),
        ("exp", "tomorrow"),
        ("iat", "now"),
    ],
)
def test_claim_of_wrong_type_refused(api, user, claim, value):
    assert_rejected(me(api, mint(user, **{claim: value})))


@pytest.mark.parametrize("sub", ["alice", "", "-1", "1.0", " 1", "0x1", "²", "9" * 40])
def test_non_numeric_or_absurd_sub_refused(api, user, sub):
    assert_rejected(me(api, mint(user, sub=sub)))


def test_sub_in_non_ascii_digits_refused(api, user):
    fullwidth = str(user.pk).translate({ord(digit): 0xFF10 + int(digit) for digit in "0123456789"})
    assert_rejected(me(api, mint(user, sub=fullwidth)))


def test_sub_of_user_that_never_existed_refused(api, user):
    assert_rejected(me(api, mint(user, sub="987654321")), "token_revoked")


def test_stale_generation_refused(api, user):
    assert_rejected(me(api, mint(user, gen=User.objects.get(pk=user.pk).token_generation + 1)), "token_revoked")


# --- token misuse


def test_refresh_token_used_as_access_token_refused(api, tokens):
    assert_rejected(me(api, tokens["refresh"]))


def test_access_token_presented_for_refresh_refused(api, tokens):
    response = api.post("/api/v1/auth/token/refresh/", {"refresh": tokens["access"]}, format="json")
    assert_rejected(response)


@pytest.mark.redis
def test_valid_token_of_deleted_user_refused(api, user, tokens):
    assert me(api, tokens["access"]).status_code == 200  # the user's state is now cached in Redis
    User.objects.filter(pk=user.pk).delete()
    assert_rejected(me(api, tokens["access"]), "token_revoked")


def test_minted_token_of_deleted_user_refused(api, user):
    token = mint(user)
    user.delete()
    assert_rejected(me(api, token), "token_revoked")
