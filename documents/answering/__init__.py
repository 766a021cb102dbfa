"""Answering a query from retrieved chunks, behind one interface (extractive offline, or an OpenAI-compatible model)."""

from documents.answering.base import Answer, Answerer, AnswererUnavailable, Citation, get_answerer

__all__ = ["Answer", "Answerer", "AnswererUnavailable", "Citation", "get_answerer"]
