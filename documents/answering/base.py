"""The answerer interface and the answer it returns."""

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass

from documents.retrieval.base import RetrievedChunk
from documents.text import token_count
from ragsecure.conf import ragsecure_settings


class AnswererUnavailable(Exception):
    """The answering backend failed or answered something unusable; the API reports 503."""


@dataclass(frozen=True)
class Citation:
    document_id: uuid.UUID
    title: str
    snippet: str
    score: float


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Citation]
    prompt_tokens: int
    completion_tokens: int
    # The backend's own usage figures when they were implausible and counted locally instead (for the audit).
    claimed_usage: tuple[int, int] | None = None


class Answerer(ABC):
    """Turns a query and the caller's retrieved chunks into an answer grounded in those chunks only."""

    # Whether answering waits on a remote backend (a worker thread is held that long, so callers get a few at once).
    remote: bool = False

    @abstractmethod
    def answer(self, *, query: str, chunks: list[RetrievedChunk]) -> Answer:
        """Answer `query` from `chunks` (which may be empty); raise AnswererUnavailable on backend failure."""

    def cost_bound(self, *, query: str, chunks: list[RetrievedChunk]) -> int:
        """The most tokens answering can cost (reserved from the caller's budget before answering).

        Extractive answers quote at most the retrieved text, plus a short fixed reply.
        """
        prompt = token_count(query) + sum(token_count(chunk.text) for chunk in chunks)
        return prompt + sum(token_count(chunk.text) for chunk in chunks) + 32


def get_answerer() -> Answerer:
    """The answerer chosen by RAGSECURE_LLM_BACKEND (`extractive` by default)."""
    backend = ragsecure_settings.LLM_BACKEND
    if backend == "extractive":
        from documents.answering.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer()
    if backend == "openai":
        from documents.answering.guard import answer_canary
        from documents.answering.openai import OpenAICompatibleAnswerer

        return OpenAICompatibleAnswerer(canary=answer_canary())
    raise AnswererUnavailable(f"Unknown LLM backend {backend!r}")
