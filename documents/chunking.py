"""Deterministic chunking on paragraph and sentence boundaries, with a sentence of overlap between chunks."""

from documents.text import paragraphs, sentences, token_count

DEFAULT_MAX_TOKENS = 220
DEFAULT_OVERLAP_SENTENCES = 1


def _pieces(sentence: str, max_tokens: int) -> list[str]:
    """A sentence longer than a chunk, cut on word boundaries."""
    words = sentence.split()
    pieces, current, size = [], [], 0
    for word in words:
        cost = token_count(word)
        if current and size + cost > max_tokens:
            pieces.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += cost
    if current:
        pieces.append(" ".join(current))
    return pieces


def chunk_text(text: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, overlap_sentences: int = DEFAULT_OVERLAP_SENTENCES) -> list[str]:
    """Split `text` into passages of at most about `max_tokens` tokens.

    Sentences are never split unless one alone exceeds the budget; paragraphs start
    new chunks when the current one is at least half full; each chunk after the first
    begins with the last `overlap_sentences` sentences of the one before.
    """
    units: list[tuple[str, int, bool]] = []  # (sentence, tokens, starts a paragraph)
    for paragraph in paragraphs(text):
        for index, sentence in enumerate(sentences(paragraph)):
            cost = token_count(sentence)
            if cost > max_tokens:
                for number, piece in enumerate(_pieces(sentence, max_tokens)):
                    units.append((piece, token_count(piece), index == 0 and number == 0))
            else:
                units.append((sentence, cost, index == 0))
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    size = 0
    for sentence, cost, paragraph_start in units:
        full = current and (size + cost > max_tokens or (paragraph_start and size >= max_tokens // 2))
        if full:
            chunks.append(" ".join(part for part, _ in current))
            carried = current[-overlap_sentences:] if overlap_sentences else []
            carried = [part for part in carried if part[1] + cost <= max_tokens]
            current, size = list(carried), sum(tokens for _, tokens in carried)
        current.append((sentence, cost))
        size += cost
    if current:
        chunks.append(" ".join(part for part, _ in current))
    return chunks
