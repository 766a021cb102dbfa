"""State changes for documents: upload (chunked for retrieval), deletion."""

import hashlib

from django.db import transaction

from accounts.budgets import budget_consume, budget_settle
from audit.context import audit_note, audit_verdict
from documents.answering import Answer, AnswererUnavailable, get_answerer
from documents.chunking import chunk_text
from documents.models import Chunk, Document, ScreeningStatus
from documents.retrieval import get_retriever
from documents.text import token_count
from ragsecure.errors import BudgetExceeded, ServiceUnavailable


def document_create(*, owner, title: str, content: str) -> Document:
    """Store a document and its chunks for the owner. Screening status starts `clean`."""
    encoded = content.encode("utf-8")
    passages = chunk_text(content)
    with transaction.atomic():
        document = Document.objects.create(
            owner_id=owner.pk,
            title=title,
            content=content,
            size=len(encoded),
            content_hash=hashlib.sha256(encoded).hexdigest(),
            screening_status=ScreeningStatus.CLEAN,
            screening_score=0.0,
            chunk_count=len(passages),
        )
        Chunk.objects.bulk_create(
            [
                Chunk(document=document, owner_id=owner.pk, ordinal=ordinal, text=text, token_count=token_count(text), retrievable=True)
                for ordinal, text in enumerate(passages)
            ],
            batch_size=500,
        )
        audit_note("document.create", document=str(document.id), size=document.size, chunks=len(passages))
    return document


def document_delete(*, document: Document, actor) -> None:
    """Delete a document and its chunks (they leave the full-text index with them)."""
    with transaction.atomic():
        document_id, owner_id = str(document.id), document.owner_id
        document.delete()
        audit_note("document.delete", document=document_id, owner=owner_id, actor=getattr(actor, "username", None))


def query_answer(*, user_id: int, tier, query: str, top_k: int) -> Answer:
    """Retrieve from the caller's own retrievable chunks, charge the retrieved bytes to the hourly budget, answer.

    Raises BudgetExceeded (nothing is returned past the budget) or ServiceUnavailable (answerer down).
    """
    chunks = get_retriever().search(owner_id=user_id, query=query, top_k=top_k)
    retrieved_bytes = sum(len(chunk.text.encode("utf-8")) for chunk in chunks)
    decision = budget_consume(
        user_id=user_id, kind="retrieved_bytes", amount=retrieved_bytes, limit=tier.retrieved_bytes_per_hour if tier else 0,
        window_seconds=3600,
    )
    audit_verdict(
        "retrieved_bytes", {"amount": retrieved_bytes, "used": decision.used, "limit": decision.limit, "allowed": decision.allowed}
    )
    if not decision.allowed:
        raise BudgetExceeded(headers={"Retry-After": str(decision.retry_after)})
    documents = sorted({str(chunk.document_id) for chunk in chunks})
    audit_verdict("retrieval", {"documents": documents, "chunks": [chunk.chunk_id for chunk in chunks]})
    # Reserve the most this answer can cost before asking for it, settle the actual cost after:
    # concurrent queries can never spend past the day's budget.
    try:
        answerer = get_answerer()
    except AnswererUnavailable:
        raise ServiceUnavailable("The answering service is unavailable; retry later.") from None
    reserved = answerer.cost_bound(query=query, chunks=chunks)
    limit = tier.llm_tokens_per_day if tier else 0
    reservation = budget_consume(user_id=user_id, kind="llm_tokens", amount=reserved, limit=limit, window_seconds=86400)
    if not reservation.allowed:
        audit_verdict("llm_tokens", {"reserved": reserved, "used": reservation.used, "limit": limit, "allowed": False})
        raise BudgetExceeded(headers={"Retry-After": str(reservation.retry_after)})
    try:
        answer = answerer.answer(query=query, chunks=chunks)
    except AnswererUnavailable as exc:
        budget_settle(user_id=user_id, kind="llm_tokens", delta=-reserved, window_seconds=86400)
        audit_verdict("answerer", {"error": str(exc)[:200]})
        raise ServiceUnavailable("The answering service is unavailable; retry later.") from None
    spent = answer.prompt_tokens + answer.completion_tokens
    budget_settle(user_id=user_id, kind="llm_tokens", delta=spent - reserved, window_seconds=86400)
    audit_verdict("llm_tokens", {"reserved": reserved, "spent": spent, "limit": limit, "allowed": True})
    return answer
