"""Make attacker-controlled text safe to store: secrets masked, control characters escaped, sizes bounded.

Every pattern here is linear-time (no nested quantifiers), so hostile input cannot stall a request.
"""

import functools
import hashlib
import hmac
import re
from typing import Any
from urllib.parse import unquote_plus

# Control characters, C1 controls, line/paragraph separators and bidi overrides (log injection, terminal tricks).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

_SECRET_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    # The body stops at the next run of five dashes, so overlapping BEGIN markers cost linear time.
    (
        re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----(?:[^-]|-(?!----)){0,10000}(?:-----END [A-Z ]{0,40}PRIVATE KEY-----)?"),
        "[PRIVATE KEY]",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[JWT]"),
    # A credential after an auth scheme word: long, or containing a digit (so "the token endpoint" stays prose).
    (
        re.compile(r"(?i)\b(bearer|apikey|basic|token)(\s+)(?:[A-Za-z0-9._~+/=-]{20,}|(?=[A-Za-z._~+/=-]{0,64}[0-9])[A-Za-z0-9._~+/=-]{8,})"),
        r"\1\2[REDACTED]",
    ),
    (re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"), "[API KEY]"),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "[AWS KEY]"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), "[GITHUB TOKEN]"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "[SLACK TOKEN]"),
    (re.compile(r"\bAIza[A-Za-z0-9_-]{35}"), "[GOOGLE KEY]"),
    (re.compile(r"\brsk_[A-Za-z0-9_-]{16,}"), "[RAGSECURE KEY]"),
    # name=value / "name": "value" where the name ends in a secret-ish word (DB_PASSWORD, MY_API_KEY, ...).
    (
        re.compile(
            r"(?i)(password|passwd|pwd|secret|api[_-]?key|access[_-]?key|private[_-]?key|token)"
            r"([\"']?\s*[=:]\s*[\"']?)[^\s&,;\"']+"
        ),
        r"\1\2[REDACTED]",
    ),
)
# Cheap pre-check: text in which none of these fragments occurs cannot match any secret pattern.
_SECRET_TRIGGER = re.compile(
    r"-----BEGIN|eyJ|sk-|AKIA|ASIA|gh[pousr]_|xox[abprs]-|AIza|rsk_|(?i:bearer|apikey|basic|token|pass|pwd|secret|api[_-]?key|access|private)"
)
# A query parameter is masked when any word of its (decoded) name is one of these: access_token, new_password, user[pwd].
SENSITIVE_PARAMETER_WORDS = frozenset(
    {"password", "passwd", "pwd", "pass", "secret", "token", "refresh", "access", "key", "apikey", "signature", "sig", "code",
     "authorization", "auth", "credential", "credentials", "session", "jwt", "otp"}
)
_NAME_WORDS = re.compile(r"[^a-z0-9]+")
TRUNCATION_MARK = "…[truncated]"


def mask_secrets(text: str) -> str:
    """Replace anything that looks like a token, key or password with a label."""
    if not _SECRET_TRIGGER.search(text):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def escape_controls(text: str) -> str:
    """Escape control characters, newlines and bidi overrides as visible \\xNN / \\uNNNN sequences."""
    return _CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}" if ord(match.group()) > 0xFF else f"\\x{ord(match.group()):02x}", text)


def as_text(value: Any) -> str:
    """Any value as text; bytes are decoded as UTF-8 with replacement, lone surrogates replaced."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    return text.encode("utf-8", errors="replace").decode("utf-8")


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATION_MARK))] + TRUNCATION_MARK


def clean(value: Any, limit: int) -> str:
    """Text safe to store and display: bounded first (so work stays linear), secrets masked, controls escaped, bounded again."""
    if type(value) is str and len(value) <= _MEMO_LENGTH:
        # Most values repeat from request to request (actions, scopes, verdict keys, paths, user agents).
        return _clean_memo(value, limit)
    return _clean(value, limit)


_MEMO_LENGTH = 256


def _clean(value: Any, limit: int) -> str:
    text = as_text(value)
    if len(text) > limit * 4:
        # Cut, and drop the word cut in half: a secret's tail must not survive because its head was cut off.
        text = text[: limit * 4]
        words = text.rsplit(None, 1)
        if len(words) == 2 and len(words[1]) < 256:
            text = words[0]
    return truncate(escape_controls(mask_secrets(text)), limit)


_clean_memo = functools.lru_cache(maxsize=4096)(_clean)


def clean_query_string(query: str, limit: int = 2048) -> str:
    """A query string with the values of sensitive parameters replaced, then cleaned."""
    parts = []
    for pair in as_text(query)[: limit * 4].split("&"):
        name, separator, _ = pair.partition("=")
        words = _NAME_WORDS.split(unquote_plus(name[:200]).lower())
        if separator and SENSITIVE_PARAMETER_WORDS.intersection(words):
            pair = f"{name}=[REDACTED]"
        parts.append(pair)
    return clean("&".join(parts), limit)


def clean_detail(value: Any, *, limit: int = 2048, depth: int = 0) -> Any:
    """A JSON-safe copy of verdict details with every string cleaned and the structure bounded."""
    if depth > 6:
        return "[nested too deep]"
    if isinstance(value, dict):
        return {clean(key, 64): clean_detail(item, limit=limit, depth=depth + 1) for key, item in list(value.items())[:50]}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [clean_detail(item, limit=limit, depth=depth + 1) for item in list(items)[:100]]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        if value != value or abs(value) == float("inf"):
            return str(value)
        if not value.is_integer():
            return value
        # Integral floats become ints (jsonb would return 1e16 as 10000000000000000, -0.0 as 0).
        value = int(value)
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    return clean(value, limit)


def personal_digest(salt: str, value: str, key: bytes) -> str:
    """The salted, keyed digest through which the chain covers a personal field. Keyed (by a key derived from the
    audit key), because the salt is stored beside it: a plain hash would give an erased IP address back to anyone
    who tries the 2**32 candidates, and a username to a dictionary."""
    return hmac.digest(_personal_key(key), f"{salt}\x00{value}".encode(), "sha256").hex()


def legacy_personal_digest(salt: str, value: str) -> str:
    """The unkeyed digest of entries written before digests were keyed (verification still accepts it for them)."""
    return hashlib.sha256(f"{salt}\x00{value}".encode()).hexdigest()


@functools.lru_cache(maxsize=8)
def _personal_key(key: bytes) -> bytes:
    return hmac.digest(key, b"ragsecure-audit-personal-digest-v1", "sha256")
