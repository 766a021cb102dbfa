"""Okapi BM25 over one owner's candidate chunks, with statistics taken from that owner's retrievable chunks only."""

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

K1 = 1.2
B = 0.75
# Letters and digits, as FTS5's unicode61 tokenizer splits them (underscores and punctuation separate words).
_WORD = re.compile(r"[^\W_]+")


def bm25_tokens(text: str) -> list[str]:
    """Case-folded words without diacritics, close to what the unicode61 tokenizer (remove_diacritics 2) indexes."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _WORD.findall("".join(char for char in decomposed if not unicodedata.combining(char)))


@dataclass(frozen=True)
class Candidate:
    """One chunk that matched a query term: its id (ties go to the older chunk), length in tokens and text."""

    key: int
    length: int
    text: str


def bm25_scores(*, terms: Sequence[str], candidates: Sequence[Candidate], total: int, average_length: float) -> dict[int, float]:
    """Each candidate's BM25 score for `terms`.

    `total` and `average_length` describe the owner's retrievable chunks and the document frequencies come
    from `candidates`, which must be every one of the owner's retrievable chunks matching a term: no number
    here depends on anyone else's text, so the order tells a caller nothing about other tenants.
    """
    phrases = [tuple(words) for words in dict.fromkeys(tuple(bm25_tokens(term)) for term in terms) if words]
    frequencies = {candidate.key: _frequencies(bm25_tokens(candidate.text), phrases) for candidate in candidates}
    document_frequency = Counter(phrase for counts in frequencies.values() for phrase, count in counts.items() if count)
    total = max(total, len(candidates))
    average_length = average_length if average_length > 0 else 1.0
    weights = {phrase: math.log(1 + (total - df + 0.5) / (df + 0.5)) for phrase, df in document_frequency.items()}
    scores = {}
    for candidate in candidates:
        norm = K1 * (1 - B + B * max(candidate.length, 1) / average_length)
        scores[candidate.key] = sum(
            weights[phrase] * count * (K1 + 1) / (count + norm) for phrase, count in frequencies[candidate.key].items() if count
        )
    return scores


def _frequencies(tokens: list[str], phrases: list[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    counts = Counter(tokens)
    result = {}
    for phrase in phrases:
        if len(phrase) == 1:
            result[phrase] = counts[phrase[0]]
        elif all(counts[word] for word in phrase):
            size = len(phrase)
            result[phrase] = sum(1 for start in range(len(tokens) - size + 1) if tuple(tokens[start : start + size]) == phrase)
        else:
            result[phrase] = 0
    return result
