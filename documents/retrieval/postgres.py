"""PostgreSQL retrieval: ts_rank_cd over the caller's retrievable chunks (see migration 0002_fulltext)."""

from django.db import connection

from documents.retrieval.base import RetrievedChunk, Retriever

# Only the number of placeholders depends on the query; every value is a bound parameter.
_TERM = "plainto_tsquery('english', %s)"

# The owner filter and the match are one WHERE clause, applied before ORDER BY ... LIMIT ranks:
# PostgreSQL intersects the GIN index on search_vector with the (owner_id, retrievable) b-tree.
# Normalisation 1 divides the rank by 1 + log(length), so long chunks do not win by length alone.
_SEARCH = """
SELECT chunk.id, chunk.document_id, document.title, chunk.text, chunk.ordinal,
       ts_rank_cd(chunk.search_vector, search.query, 1) AS score
FROM (SELECT {query} AS query) AS search
CROSS JOIN documents_chunk AS chunk
JOIN documents_document AS document ON document.id = chunk.document_id
WHERE chunk.owner_id = %s
  AND chunk.retrievable
  AND chunk.search_vector @@ search.query
ORDER BY score DESC, chunk.id
LIMIT %s
"""


class PostgresRetriever(Retriever):
    """Ranks with ts_rank_cd (cover density) against an OR of the query's terms."""

    def _search(self, *, owner_id: int, terms: list[str], top_k: int) -> list[RetrievedChunk]:
        sql = _SEARCH.format(query=" || ".join([_TERM] * len(terms)))
        with connection.cursor() as cursor:
            cursor.execute(sql, [*terms, owner_id, top_k])
            rows = cursor.fetchall()
        return [
            RetrievedChunk(chunk_id=chunk_id, document_id=document_id, title=title, text=text, ordinal=ordinal, score=float(score))
            for chunk_id, document_id, title, text, ordinal, score in rows
        ]
