"""Sanitising attacker text for the audit log: secrets masked, controls escaped, sizes bounded, in linear time."""

import json
import math
import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.sanitize import TRUNCATION_MARK, clean, clean_detail, clean_query_string, escape_controls, mask_secrets

BIDI_AND_SEPARATORS = set("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
JWT = (
    "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0"
    ".eyJzdWIiOiI0MiIsImp0aSI6ImFiYzEyMyIsInNjb3BlcyI6WyJxdWVyeTpyZWFkIl19"
    ".c2lnbmF0dXJlLWJ5dGVzLXRoYXQtbG9vay1yZWFsLWVub3VnaA"
)
PEM_BODY = "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF"


def raw_controls(text: str) -> list[str]:
    return [char for char in text if unicodedata.category(char) == "Cc" or char in BIDI_AND_SEPARATORS]


# ---------------------------------------------------------------------------
# mask_secrets
# ---------------------------------------------------------------------------

SECRETS = {
    "jwt": JWT,
    "openai": "sk-proj-4f9Kq2LmN8vX1cT7bR3yZ6wA0dE5hJ",
    "anthropic": "sk-ant-api03-Xy7Qw9Er2Ty5Ui8Op1As4Df",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "aws_session": "ASIAJEXAMPLEXEG2JICE",
    "github": "ghp_1A2b3C4d5E6f7G8h9I0jK1lM2nO3pQ4rS5tU",
    "slack": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "google": "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "ragsecure": "rsk_live_8Hq2Zk4Lm9Np3Rt7Vw1Xy5",
    "pem": f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----",
    "pem_rsa": f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secret_is_masked_in_surrounding_text(kind):
    secret = SECRETS[kind]

    masked = mask_secrets(f"please use {secret} for the import, thanks")

    assert secret not in masked
    assert masked.startswith("please use ")
    assert masked.endswith(" for the import, thanks")


def test_unterminated_private_key_is_masked_to_the_end():
    masked = mask_secrets(f"key follows -----BEGIN EC PRIVATE KEY-----\n{PEM_BODY}")

    assert PEM_BODY not in masked
    assert masked.startswith("key follows ")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "ApiKey", "Basic", "Token"])
def test_authorization_credentials_are_masked(scheme):
    credential = "dGhpcy1pcy1hLWNyZWRlbnRpYWw9"

    masked = mask_secrets(f"Authorization: {scheme} {credential}")

    assert credential not in masked
    assert masked.startswith(f"Authorization: {scheme} ")


@pytest.mark.parametrize(
    "text, value",
    [
        ("password=hunter2-hunter2", "hunter2-hunter2"),
        ("PASSWORD = Tr0ub4dor&3", "Tr0ub4dor"),
        ("api_key: 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ("apikey=9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ("client-secret:s3cr3t-value", "s3cr3t-value"),
        ("refresh_token=opaque-refresh-value", "opaque-refresh-value"),
        ("login with pwd=letmein123 now", "letmein123"),
    ],
)
def test_key_value_secrets_are_masked(text, value):
    assert value not in mask_secrets(text)


@pytest.mark.parametrize(
    "text, value",
    [
        ("DB_PASSWORD=Tr0ub4dor-and-3", "Tr0ub4dor-and-3"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("export MY_API_KEY=abcd1234efgh5678", "abcd1234efgh5678"),
        ('{"username": "alice", "password": "hunter2-hunter2"}', "hunter2-hunter2"),
    ],
)
def test_prefixed_and_quoted_key_value_secrets_are_masked(text, value):
    # The shapes secrets take in environment dumps and JSON configs pasted into prompts.
    assert value not in mask_secrets(text)


@pytest.mark.parametrize(
    "text",
    [
        "Send the token to the server",
        "Each access token expires after five minutes.",
        "the token endpoint returns a new pair",
        "Please rotate the token immediately",
        "my passwordless login works; the keyboard=qwerty layout too",
        "sk-short",
        "AKIA1234",
        "ghp_abc",
        "xoxb-12",
        "AIzaShort",
        "rsk_short",
        "eyJhbGciOi",
        "eyJ.abc.def",
        "-----BEGIN PUBLIC KEY-----",
        "Bearer abc",
    ],
)
def test_benign_look_alikes_are_left_alone(text):
    assert mask_secrets(text) == text


# ---------------------------------------------------------------------------
# escape_controls
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, escaped",
    [
        ("a\nb", "a\\x0ab"),
        ("a\rb", "a\\x0db"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nul\x00", "nul\\x00"),
        ("tab\there", "tab\\x09here"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("line\u2028sep", "line\\u2028sep"),
        ("para\u2029sep", "para\\u2029sep"),
        ("\u202eevil", "\\u202eevil"),
        ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
    ],
)
def test_control_characters_are_escaped_visibly(raw, escaped):
    assert escape_controls(raw) == escaped


def test_printable_text_is_unchanged():
    text = "GET /api/v1/query/ <script>alert('x')</script> naïve café 日本語 😀"

    assert escape_controls(text) == text


# ---------------------------------------------------------------------------
# clean
# ---------------------------------------------------------------------------


def test_clean_truncates_with_the_marker():
    cleaned = clean("x" * 1000, 100)

    assert len(cleaned) == 100
    assert cleaned.endswith(TRUNCATION_MARK)


def test_clean_keeps_short_text_whole():
    assert clean("short and sweet", 100) == "short and sweet"


def test_clean_bounds_text_grown_by_escaping():
    cleaned = clean("\x00" * 100, 100)

    assert len(cleaned) <= 100
    assert raw_controls(cleaned) == []


def test_clean_masks_before_truncating():
    cleaned = clean(f"{'a' * 50} {SECRETS['aws']} tail", 60)

    assert "AKIA" not in cleaned


def test_clean_decodes_invalid_utf8_bytes():
    cleaned = clean(b"caf\xc3\xa9 \xff\xfe\x00", 100)

    assert cleaned.startswith("café ")
    assert raw_controls(cleaned) == []


def test_clean_replaces_lone_surrogates():
    cleaned = clean("a\ud800b", 100)

    cleaned.encode("utf-8")  # storable and transmittable
    assert cleaned.startswith("a") and cleaned.endswith("b")


def test_secret_cut_by_the_input_bound_is_not_stored_in_part():
    # A long key block shrinks to a label, pulling what follows the input bound into the stored text.
    key_block = f"-----BEGIN PRIVATE KEY-----\n{'A' * 1900}\n-----END PRIVATE KEY-----\n"
    api_key = "sk-" + "Z9" * 20
    text = key_block.ljust(2030) + api_key

    cleaned = clean(text, 512)

    assert "Z9Z9Z9" not in cleaned


# ---------------------------------------------------------------------------
# clean_query_string
# ---------------------------------------------------------------------------


def test_query_string_masks_sensitive_parameters_only():
    query = "page=2&token=abc123def456&q=hello+world&password=hunter2&api_key=k1&keyboard=qwerty&Access_Token=zz"

    assert clean_query_string(query) == (
        "page=2&token=[REDACTED]&q=hello+world&password=[REDACTED]&api_key=[REDACTED]&keyboard=qwerty&Access_Token=[REDACTED]"
    )


def test_query_string_without_secrets_is_unchanged():
    assert clean_query_string("page=2&page_size=50&ordering=-created_at&flag") == "page=2&page_size=50&ordering=-created_at&flag"


@pytest.mark.parametrize(
    "query, value",
    [
        ("new_password=hunter2-hunter2", "hunter2-hunter2"),
        ("user[password]=hunter2-hunter2", "hunter2-hunter2"),
        ("pass%77ord=hunter2-hunter2", "hunter2-hunter2"),
        ("access%5Ftoken=opaque-access-value", "opaque-access-value"),
        ("id_token=opaque-id-token-value", "opaque-id-token-value"),
    ],
)
def test_query_string_masks_sensitive_parameter_variants(query, value):
    # Names a server framework reads as (or that plainly are) credentials.
    assert value not in clean_query_string(query)


def test_query_string_masks_secrets_in_innocent_parameters():
    cleaned = clean_query_string(f"note={SECRETS['github']}&page=1")

    assert SECRETS["github"] not in cleaned
    assert cleaned.endswith("&page=1")


def test_query_string_escapes_controls_and_is_bounded():
    cleaned = clean_query_string("q=a\nb\x1b&" + "x=1&" * 2000)

    assert raw_controls(cleaned) == []
    assert len(cleaned) <= 2048
    assert cleaned.endswith(TRUNCATION_MARK)


# ---------------------------------------------------------------------------
# clean_detail
# ---------------------------------------------------------------------------


def test_detail_strings_are_cleaned():
    detail = clean_detail({"prompt": f"use {SECRETS['aws']}\nthen", "reason\x1b": "ok"})

    assert detail == {"prompt": "use [AWS KEY]\\x0athen", "reason\\x1b": "ok"}


def test_detail_depth_is_bounded():
    nested: dict = {"leaf": "x"}
    for _ in range(20):
        nested = {"n": nested}

    cleaned = clean_detail(nested)

    text = json.dumps(cleaned)
    assert "leaf" not in text
    assert "[nested too deep]" in text


def test_detail_breadth_is_bounded():
    cleaned = clean_detail({"many": list(range(1000)), **{f"k{i}": i for i in range(200)}})

    assert len(cleaned) <= 50
    assert len(cleaned["many"]) <= 100


def test_detail_long_strings_are_truncated():
    cleaned = clean_detail({"prompt": "p" * 10_000}, limit=2048)

    assert len(cleaned["prompt"]) <= 2048
    assert cleaned["prompt"].endswith(TRUNCATION_MARK)


def test_detail_non_finite_floats_and_huge_ints_become_strings():
    cleaned = clean_detail({"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "big": 10**40, "score": 0.25, "count": 7})

    assert cleaned == {"nan": "nan", "inf": "inf", "ninf": "-inf", "big": str(10**40), "score": 0.25, "count": 7}
    json.dumps(cleaned, allow_nan=False)


def test_detail_sets_tuples_and_bytes_become_json():
    cleaned = clean_detail({"scopes": frozenset({"query:read", "admin"}), "pair": (1, 2), "raw": b"\xff\x00"})

    assert cleaned["scopes"] == ["admin", "query:read"]
    assert cleaned["pair"] == [1, 2]
    assert raw_controls(cleaned["raw"]) == []


def test_detail_set_of_mixed_types_does_not_raise():
    # An exception here would escape the audit middleware: the request would get a 500 and no entry.
    cleaned = clean_detail({"verdicts": {1, "flagged", None}})

    assert sorted(map(str, cleaned["verdicts"])) == ["1", "None", "flagged"]


json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary()
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_detail_is_always_strict_json(value):
    cleaned = clean_detail({"value": value})

    json.dumps(cleaned, allow_nan=False)


# ---------------------------------------------------------------------------
# Properties: clean never raises and never returns raw controls
# ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=16, max_value=4096))
def test_clean_of_any_text_is_safe_and_bounded(text, limit):
    cleaned = clean(text, limit)

    assert raw_controls(cleaned) == []
    assert len(cleaned) <= limit
    cleaned.encode("utf-8")


# Lone surrogates, controls, format and separator characters are rare in st.text(); weight them up.
HOSTILE_CHARACTERS = st.one_of(st.characters(categories=["Cs"]), st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), st.characters())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=HOSTILE_CHARACTERS), st.integers(min_value=16, max_value=512))
def test_clean_of_text_with_surrogates_and_controls_is_safe(text, limit):
    cleaned = clean(text, limit)

    assert raw_controls(cleaned) == []
    cleaned.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.binary(), st.integers(min_value=16, max_value=4096))
def test_clean_of_any_bytes_is_safe_and_bounded(data, limit):
    cleaned = clean(data, limit)

    assert raw_controls(cleaned) == []
    assert len(cleaned) <= limit
    cleaned.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_clean_query_string_of_any_text_is_safe(text):
    cleaned = clean_query_string(text)

    assert raw_controls(cleaned) == []
    assert len(cleaned) <= 2048


# ---------------------------------------------------------------------------
# Linear time: hostile input cannot stall a request (generous bounds, to catch catastrophic backtracking)
# ---------------------------------------------------------------------------

MEGABYTE = 10**6
HOSTILE_FRAGMENTS = {
    "jwt_prefix": "eyJ",
    "jwt_dots": "eyJa.",
    "private_key_header": "-----BEGIN PRIVATE KEY-----",
    "password_key": "password=",
    "bearer": "Bearer ",
    "token_word": "token aaaaaaaa ",
    "openai_prefix": "sk-",
    "letters": "a",
    "controls": "\x00\n\x1b",
}


def hostile(fragment: str) -> str:
    return (fragment * (MEGABYTE // len(fragment) + 1))[:MEGABYTE]


def seconds(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


@pytest.mark.parametrize("name", sorted(HOSTILE_FRAGMENTS))
def test_clean_of_a_hostile_megabyte_is_fast(name):
    assert seconds(clean, hostile(HOSTILE_FRAGMENTS[name]), 2048) < 2.0


@pytest.mark.parametrize("name", sorted(HOSTILE_FRAGMENTS))
def test_mask_secrets_of_a_hostile_megabyte_is_fast(name):
    # mask_secrets is public and documented linear-time; callers other than clean() need not pre-bound their input.
    assert seconds(mask_secrets, hostile(HOSTILE_FRAGMENTS[name])) < 2.0


def test_clean_query_string_of_a_hostile_megabyte_is_fast():
    assert seconds(clean_query_string, hostile("password=&")) < 2.0
