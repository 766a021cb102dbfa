"""SQLite FTS5 retrieval over the caller's retrievable chunks, ordered by bm25() (see migration 0002_fulltext)."""

import uuid

from django.db import connection

from documents.retrieval.base import RetrievedChunk, Retriever

# The FTS table drives the join (CROSS JOIN fixes SQLite's join order): the MATCH yields the
# candidate rowids, each is looked up by primary key and kept only when it is the owner's and
# retrievable, all before ORDER BY ... LIMIT ranks them.
_SEARCH = """
SELECT chunk.id, chunk.document_id, document.title, chunk.text, chunk.ordinal, -bm25(documents_chunk_fts) AS score
FROM documents_chunk_fts
CROSS JOIN documents_chunk AS chunk ON chunk.id = documents_chunk_fts.rowid
CROSS JOIN documents_document AS document ON document.id = chunk.document_id
WHERE documents_chunk_fts MATCH %s
  AND chunk.owner_id = %s
  AND chunk.retrievable
ORDER BY score DESC, chunk.id
LIMIT %s
"""


def fts5_query(terms: list[str]) -> str:
    """An FTS5 query matching any of `terms`, each a quoted string so that nothing in it is an operator.

    Inside quotes only `"` is special (doubled here); NUL would end the string early in SQLite's C
    code, so it becomes a space, which the tokenizer treats as a separator anyway.
    """
    return " OR ".join('"' + term.replace('"', '""').replace("\x00", " ") + '"' for term in terms)


class SqliteFtsRetriever(Retriever):
    """Orders by FTS5's bm25(); reports rank-based scores (see below)."""

    def _search(self, *, owner_id: int, terms: list[str], top_k: int) -> list[RetrievedChunk]:
        with connection.cursor() as cursor:
            cursor.execute(_SEARCH, [fts5_query(terms), owner_id, top_k])
            rows = cursor.fetchall()
        # bm25() weighs terms by their frequency across the whole table, other users' chunks
        # included; its value would tell a caller about documents it cannot see. Callers get
        # the rank instead (1, 1/2, 1/3, ...): higher is better, and it depends on the order alone.
        return [_retrieved(row, score=1.0 / rank) for rank, row in enumerate(rows, start=1)]


def _retrieved(row: tuple, *, score: float) -> RetrievedChunk:
    chunk_id, document_id, title, text, ordinal, _ = row
    # SQLite stores the document's UUID as 32 hex digits.
    return RetrievedChunk(
        chunk_id=chunk_id, document_id=uuid.UUID(document_id), title=title, text=text, ordinal=ordinal, score=score
    )
