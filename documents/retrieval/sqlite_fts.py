"""SQLite FTS5 retrieval over the caller's retrievable chunks, ranked by BM25 on the caller's own statistics."""

import uuid

from django.db import connection

from documents.retrieval.base import RetrievedChunk, Retriever
from documents.retrieval.bm25 import Candidate, bm25_scores

# The FTS table drives the join (CROSS JOIN fixes SQLite's join order): the MATCH yields the
# candidate rowids, each is looked up by primary key and kept only when it is the owner's and
# retrievable. FTS5's own bm25() is not used: it weighs terms by their frequency across the whole
# table (other tenants' and quarantined chunks included), so its order would tell a caller
# whether someone else's documents hold a word.
_CANDIDATES = """
SELECT chunk.id, chunk.document_id, document.title, chunk.text, chunk.ordinal, chunk.token_count
FROM documents_chunk_fts
CROSS JOIN documents_chunk AS chunk ON chunk.id = documents_chunk_fts.rowid
CROSS JOIN documents_document AS document ON document.id = chunk.document_id
WHERE documents_chunk_fts MATCH %s
  AND chunk.owner_id = %s
  AND chunk.retrievable
"""

# The owner's collection statistics, read from the (owner, retrievable, token_count) index alone.
_STATISTICS = "SELECT COUNT(*), AVG(token_count) FROM documents_chunk WHERE owner_id = %s AND retrievable"


def fts5_query(terms: list[str]) -> str:
    """An FTS5 query matching any of `terms`, each a quoted string so that nothing in it is an operator.

    Inside quotes only `"` is special (doubled here); NUL would end the string early in SQLite's C
    code, so it becomes a space, which the tokenizer treats as a separator anyway.
    """
    return " OR ".join('"' + term.replace('"', '""').replace("\x00", " ") + '"' for term in terms)


class SqliteFtsRetriever(Retriever):
    """FTS5 finds the owner's matching chunks; BM25 ranks them on the owner's statistics alone."""

    def _search(self, *, owner_id: int, terms: list[str], top_k: int) -> list[RetrievedChunk]:
        with connection.cursor() as cursor:
            cursor.execute(_CANDIDATES, [fts5_query(terms), owner_id])
            rows = {row[0]: row for row in cursor.fetchall()}
            if not rows:
                return []
            cursor.execute(_STATISTICS, [owner_id])
            total, average_length = cursor.fetchone()
        candidates = [Candidate(key=row[0], length=row[5], text=row[3]) for row in rows.values()]
        scores = bm25_scores(terms=terms, candidates=candidates, total=total, average_length=float(average_length or 0))
        best = sorted(rows, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:top_k]
        return [_retrieved(rows[chunk_id], score=round(scores[chunk_id], 6)) for chunk_id in best]


def _retrieved(row: tuple, *, score: float) -> RetrievedChunk:
    chunk_id, document_id, title, text, ordinal, _ = row
    # SQLite stores the document's UUID as 32 hex digits.
    return RetrievedChunk(
        chunk_id=chunk_id, document_id=uuid.UUID(document_id), title=title, text=text, ordinal=ordinal, score=score
    )
