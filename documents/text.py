"""Text utilities shared by chunking and answering: token estimates, paragraphs and sentences (all linear-time)."""

import re

# Han, kana and hangul characters count one token each (those scripts put no spaces between words).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]", re.UNICODE)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# A sentence ends at . ! ? followed by whitespace, at 。！？ (no space follows them), or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*|\n+")


def token_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each token of `text`."""
    return [match.span() for match in _TOKEN.finditer(text)]


def token_estimate_exceeds(text: str, limit: int) -> bool:
    """Whether `text` has more than `limit` tokens; stops counting at the limit."""
    for count, _ in enumerate(_TOKEN.finditer(text), start=1):
        if count > limit:
            return True
    return False


def token_count(text: str) -> int:
    """An estimate of model tokens: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def paragraphs(text: str) -> list[str]:
    """Non-empty paragraphs, split on blank lines."""
    return [part.strip() for part in _PARAGRAPH_BREAK.split(text) if part.strip()]


def sentences(text: str) -> list[str]:
    """Non-empty sentences of one paragraph or passage."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]
