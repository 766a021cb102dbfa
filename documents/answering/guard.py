"""The answer on its way out: secrets redacted, and the deployment's canary never delivered."""

import dataclasses
import hashlib
import hmac
import re
import unicodedata

from django.conf import settings

from audit.sanitize import mask_secrets
from documents.answering.base import Answer
from ragsecure.conf import ragsecure_settings

CANARY_PREFIX = "rs-canary-"
# Zero-width and other format characters a model could slip between the canary's letters.
_FOLD_DROP = re.compile(r"[\W_]+")


class CanaryLeaked(Exception):
    """The answer carries the system prompt's canary: the model was steered into revealing its instructions."""


def answer_canary() -> str:
    """The deployment's canary: RAGSECURE ANSWER_CANARY when set, else derived from SECRET_KEY (stable, unguessable)."""
    configured = ragsecure_settings.ANSWER_CANARY
    if configured:
        return configured
    digest = hmac.new(settings.SECRET_KEY.encode(), b"ragsecure answer canary", hashlib.sha256).hexdigest()
    return f"{CANARY_PREFIX}{digest[:20]}"


def _fold(text: str) -> str:
    """Lower-case letters and digits only, after NFKC: spacing, punctuation, zero-width characters and case removed."""
    return _FOLD_DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


def canary_leaked(text: str, canary: str) -> bool:
    """Whether `text` carries the canary's distinctive part, whole, reversed, or either half, however spaced or cased."""
    core = _fold(canary.removeprefix(CANARY_PREFIX)) or _fold(canary)
    if len(core) < 8:
        return _fold(canary) in _fold(text) if canary else False
    folded = _fold(text)
    half = len(core) // 2
    pieces = (core, core[::-1], core[:half], core[half:])
    return any(piece in folded for piece in pieces)


def answer_guard(answer: Answer, *, canary: str) -> tuple[Answer, int]:
    """The answer with secrets in its text, snippets and titles redacted, and how many fields changed.

    Raises CanaryLeaked when the answer text carries the canary: such an answer is never delivered.
    """
    if canary and canary_leaked(answer.text, canary):
        raise CanaryLeaked()
    changed = 0

    def redact(value: str) -> str:
        nonlocal changed
        masked = mask_secrets(value)
        changed += masked != value
        return masked

    citations = [dataclasses.replace(c, title=redact(c.title), snippet=redact(c.snippet)) for c in answer.citations]
    return dataclasses.replace(answer, text=redact(answer.text), citations=citations), changed
