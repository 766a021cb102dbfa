"""The retriever interface: ranked chunks of one owner's retrievable documents for a query."""

import re
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass

from django.db import connection

MAX_QUERY_TERMS = 32
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class RetrievedChunk:
    """One ranked passage; `score` is higher for better matches, comparable within one result list."""

    chunk_id: int
    document_id: uuid.UUID
    title: str
    text: str
    ordinal: int
    score: float


def query_terms(text: str) -> list[str]:
    """The distinct search words of a query (lower-cased, in order, at most MAX_QUERY_TERMS).

    Only word characters survive, so no operator, quote or bracket of any engine's
    query syntax can reach it from user text.
    """
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip("_")
        if word and word not in seen:
            seen[word] = None
            if len(seen) == MAX_QUERY_TERMS:
                break
    return list(seen)


class Retriever(ABC):
    """Searches one owner's retrievable chunks; the owner filter is part of the engine query."""

    def search(self, *, owner_id: int, query: str, top_k: int) -> list[RetrievedChunk]:
        """The best `top_k` chunks for `query` among `owner_id`'s retrievable chunks, best first; [] when the query has no terms."""
        if top_k < 1:
            raise ValueError("top_k must be at least 1")  # engines read LIMIT -1 as "no limit"
        terms = query_terms(query)
        if not terms:
            return []
        return self._search(owner_id=owner_id, terms=terms, top_k=top_k)

    @abstractmethod
    def _search(self, *, owner_id: int, terms: list[str], top_k: int) -> list[RetrievedChunk]:
        """The engine query for non-empty `terms` (plain words from query_terms()), owner filter included."""


def get_retriever() -> Retriever:
    """The retriever for the default database's engine."""
    if connection.vendor == "postgresql":
        from documents.retrieval.postgres import PostgresRetriever

        return PostgresRetriever()
    if connection.vendor == "sqlite":
        from documents.retrieval.sqlite_fts import SqliteFtsRetriever

        return SqliteFtsRetriever()
    raise RuntimeError(f"No retriever for the {connection.vendor} database engine")
