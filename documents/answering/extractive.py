"""The offline answerer: the retrieved sentences that best support the query, with their documents as citations."""

import heapq
import math
import re
import uuid
from dataclasses import dataclass

from documents.answering.base import Answer, Answerer, Citation
from documents.retrieval.base import RetrievedChunk, query_terms
from documents.text import sentences, token_count

NO_ANSWER = "No passage in your documents answers this question."
MAX_SENTENCES = 3
MAX_SENTENCE_CHARS = 400
MAX_SNIPPET_CHARS = 300
# A picked sentence must carry at least this share of the best sentence's support.
MIN_RELATIVE_SUPPORT = 0.6
# The retriever's ranking breaks near-ties between sentences; it never outweighs a matched term.
RANK_BONUS = 0.05

_WORD = re.compile(r"\w+", re.UNICODE)
_WHITESPACE = re.compile(r"\s+")
# Words that say nothing about what is asked; they count only when a query has nothing else.
STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be because been before being below between both but by can
    could did do does doing down during each few for from further had has have having he her here hers him his how i if
    in into is it its itself just me more most my no nor not now of off on once only or other our ours out over own same
    she should so some such than that the their theirs them then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your yours""".split()
)


@dataclass(frozen=True)
class _Candidate:
    rank: int  # the chunk's position in the retrieval results
    position: int  # the sentence's position in its chunk
    text: str
    terms: frozenset[str]


def _words(text: str) -> set[str]:
    """The words of `text`, tokenised as query_terms tokenises a query."""
    return {word.strip("_") for word in _WORD.findall(text.lower())} - {""}


def clip(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _excerpt(sentence: str, terms: frozenset[str]) -> str:
    """A long sentence cut down to a window that starts near its first matching word."""
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return sentence
    start = 0
    for match in _WORD.finditer(sentence.lower()):
        if match.group().strip("_") in terms:
            start = match.start()
            break
    # Keep a little context before the first match, starting on a word.
    start = sentence.rfind(" ", 0, max(0, start - MAX_SENTENCE_CHARS // 8)) + 1
    if start == 0:
        return clip(sentence, MAX_SENTENCE_CHARS)
    return "…" + clip(sentence[start:], MAX_SENTENCE_CHARS - 1)


class ExtractiveAnswerer(Answerer):
    """Answers with up to three retrieved sentences, weighted by how rare the query words they contain are."""

    def answer(self, *, query: str, chunks: list[RetrievedChunk]) -> Answer:
        """The best-supported sentences of `chunks` and one citation per document they came from; never raises."""
        prompt_tokens = token_count(query) + sum(token_count(chunk.text) for chunk in chunks)
        picked = self._pick(query, chunks)
        if not picked:
            return Answer(text=NO_ANSWER, citations=[], prompt_tokens=prompt_tokens, completion_tokens=token_count(NO_ANSWER))

        # Read the answer by document, best document first, each document's sentences in text order.
        by_document: dict[uuid.UUID, list[tuple[float, _Candidate]]] = {}
        for score, candidate in picked:
            by_document.setdefault(chunks[candidate.rank].document_id, []).append((score, candidate))
        parts: list[str] = []
        citations: list[Citation] = []
        for document_id, supports in by_document.items():
            supports.sort(key=lambda item: (item[1].rank, item[1].position))
            excerpts = [_excerpt(candidate.text, candidate.terms) for _, candidate in supports]
            parts.extend(excerpts)
            best_chunk = chunks[min(candidate.rank for _, candidate in supports)]
            citations.append(
                Citation(
                    document_id=document_id,
                    title=best_chunk.title,
                    snippet=clip(" ".join(excerpts), MAX_SNIPPET_CHARS),
                    score=best_chunk.score,
                )
            )
        text = " ".join(parts)
        return Answer(text=text, citations=citations, prompt_tokens=prompt_tokens, completion_tokens=token_count(text))

    def _pick(self, query: str, chunks: list[RetrievedChunk]) -> list[tuple[float, _Candidate]]:
        """The chosen sentences with their scores, best first."""
        terms = query_terms(query)
        wanted = frozenset(term for term in terms if term not in STOPWORDS) or frozenset(terms)
        if not wanted or not chunks:
            return []

        candidates: list[_Candidate] = []
        seen: set[str] = set()
        sentence_count = 0
        for rank, chunk in enumerate(chunks):
            for position, sentence in enumerate(sentences(chunk.text)):
                sentence_count += 1
                # Overlapping chunks repeat sentences; the best-ranked copy stands for all of them.
                key = _WHITESPACE.sub(" ", sentence.lower())
                if key in seen:
                    continue
                seen.add(key)
                matched = frozenset(_words(sentence) & wanted)
                if matched:
                    candidates.append(_Candidate(rank=rank, position=position, text=sentence, terms=matched))
        if not candidates:
            return []

        # Rarer words among the retrieved sentences weigh more (BM25's idf, always positive).
        frequency: dict[str, int] = dict.fromkeys(wanted, 0)
        for candidate in candidates:
            for term in candidate.terms:
                frequency[term] += 1
        weight = {term: math.log(1 + (sentence_count - count + 0.5) / (count + 0.5)) for term, count in frequency.items()}
        total = sum(weight.values())

        def score(candidate: _Candidate) -> float:
            support = sum(weight[term] for term in candidate.terms) / total
            return support + RANK_BONUS / (1 + candidate.rank)

        scored = [(score(candidate), candidate) for candidate in candidates]
        # Ties go to the better-ranked chunk, then to the earlier sentence: the result never depends on set order.
        best = heapq.nsmallest(MAX_SENTENCES, scored, key=lambda item: (-item[0], item[1].rank, item[1].position))
        floor = MIN_RELATIVE_SUPPORT * best[0][0]
        return [(value, candidate) for value, candidate in best if value >= floor]
