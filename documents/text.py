"""Text utilities shared by chunking and answering: token estimates, paragraphs and sentences (all linear-time)."""

import re

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# A sentence ends at . ! ? (or their CJK forms) followed by whitespace, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")


def token_count(text: str) -> int:
    """An estimate of model tokens: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def paragraphs(text: str) -> list[str]:
    """Non-empty paragraphs, split on blank lines."""
    return [part.strip() for part in _PARAGRAPH_BREAK.split(text) if part.strip()]


def sentences(text: str) -> list[str]:
    """Non-empty sentences of one paragraph or passage."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]
