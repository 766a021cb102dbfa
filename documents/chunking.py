"""Deterministic chunking on paragraph and sentence boundaries, with a sentence of overlap between chunks.

A chunk's sentences are joined by one space where the original had any whitespace
between them and by nothing where it had none (text in scripts without spaces), so
every word of a chunk is a word of the document.
"""

import re

from documents.text import token_estimate_exceeds, token_spans

DEFAULT_MAX_TOKENS = 220


class TooManyPassages(ValueError):
    """The text would make more passages than allowed."""

DEFAULT_OVERLAP_SENTENCES = 1
# A sentence ends after . ! ? followed by whitespace, after 。！？, or at a line break.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*|\s*\n\s*")
_BLANK_LINE = re.compile(r"\n\s*\n")


def _sentence_spans(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, starts a paragraph) of each non-blank sentence."""
    spans: list[tuple[int, int, bool]] = []
    start, paragraph_start = 0, True
    for match in _BOUNDARY.finditer(text):
        if match.start() > start and text[start : match.start()].strip():
            spans.append((start, match.start(), paragraph_start))
            paragraph_start = False
        if _BLANK_LINE.search(match.group()):
            paragraph_start = True
        start = max(start, match.end())
    if start < len(text) and text[start:].strip():
        spans.append((start, len(text), paragraph_start))
    trimmed = []
    for begin, end, flag in spans:
        piece = text[begin:end]
        trimmed.append((begin + len(piece) - len(piece.lstrip()), end - (len(piece) - len(piece.rstrip())), flag))
    return trimmed


def _join(text: str, units: list[tuple[int, int, int, bool]]) -> str:
    parts = [text[units[0][0] : units[0][1]]]
    for previous, unit in zip(units, units[1:], strict=False):
        parts.append(("" if previous[1] == unit[0] else " ") + text[unit[0] : unit[1]])
    return "".join(parts)


def _cut(text: str, start: int, end: int, max_tokens: int) -> list[tuple[int, int, int]]:
    """A sentence longer than a chunk as (start, end, tokens) pieces: on whitespace where possible, else between tokens."""
    spans = [(start + a, start + b) for a, b in token_spans(text[start:end])]
    pieces: list[tuple[int, int, int]] = []
    first = 0
    while first < len(spans):
        last = min(first + max_tokens, len(spans))
        # Prefer to end the piece at the last whitespace gap within the budget, so words stay whole.
        if last < len(spans):
            for index in range(last, first, -1):
                if text[spans[index - 1][1] : spans[index][0]].strip() == "" and spans[index - 1][1] < spans[index][0]:
                    last = index
                    break
        pieces.append((spans[first][0], spans[last - 1][1], last - first))
        first = last
    return pieces


def chunk_text(
    text: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, overlap_sentences: int = DEFAULT_OVERLAP_SENTENCES,
    max_chunks: int | None = None,
) -> list[str]:
    """Split `text` into passages of at most `max_tokens` tokens.

    Sentences are never split unless one alone exceeds the budget; a paragraph starts a
    new chunk when the current one is at least half full; each chunk after the first
    begins with up to `overlap_sentences` sentences of the one before, as far as they fit.
    Raises TooManyPassages past `max_chunks`, early: a text with more tokens than
    `max_chunks` passages can hold (punctuation runs count a token a character) is refused
    after one counting pass, before any chunking.
    """
    if max_chunks is not None and token_estimate_exceeds(text, max_chunks * max_tokens):
        raise TooManyPassages(max_chunks)
    units: list[tuple[int, int, int, bool]] = []  # (start, end, tokens, starts a paragraph)
    for start, end, paragraph_start in _sentence_spans(text):
        cost = len(token_spans(text[start:end]))
        if cost == 0:
            continue
        if cost > max_tokens:
            for number, (piece_start, piece_end, piece_cost) in enumerate(_cut(text, start, end, max_tokens)):
                units.append((piece_start, piece_end, piece_cost, paragraph_start and number == 0))
        else:
            units.append((start, end, cost, paragraph_start))
    chunks: list[str] = []
    current: list[tuple[int, int, int, bool]] = []
    size = 0
    for unit in units:
        cost, paragraph_start = unit[2], unit[3]
        if current and (size + cost > max_tokens or (paragraph_start and size >= max_tokens // 2)):
            chunks.append(_join(text, current))
            if max_chunks is not None and len(chunks) >= max_chunks:
                raise TooManyPassages(max_chunks)
            carried: list[tuple[int, int, int, bool]] = []
            for previous in reversed(current[-overlap_sentences:] if overlap_sentences else []):
                if sum(item[2] for item in carried) + previous[2] + cost > max_tokens:
                    break
                carried.insert(0, previous)
            current, size = carried, sum(item[2] for item in carried)
        current.append(unit)
        size += cost
    if current:
        chunks.append(_join(text, current))
    return chunks
