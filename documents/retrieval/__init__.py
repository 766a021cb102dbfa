"""Full-text retrieval over a user's own chunks, one implementation per database engine."""

from documents.retrieval.base import RetrievedChunk, Retriever, get_retriever, query_terms

__all__ = ["RetrievedChunk", "Retriever", "get_retriever", "query_terms"]
