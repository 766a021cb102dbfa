"""State changes for documents: upload (chunked for retrieval), deletion."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone

from accounts.budgets import budget_consume, budget_settle
from accounts.concurrency import concurrency_slot
from accounts.selectors import tier_get
from accounts.services import storage_release, storage_reserve
from audit.context import audit_note, audit_outcome, audit_verdict
from documents.answering import Answer, AnswererUnavailable, get_answerer
from documents.answering.guard import CanaryLeaked, answer_canary, answer_guard
from documents.chunking import TooManyPassages, chunk_text
from documents.guards import screen_or_block, verdict_record, verdict_status
from documents.models import Chunk, Document, ScreeningStatus
from documents.retrieval import get_retriever
from documents.text import token_count
from ragsecure.conf import ragsecure_settings
from ragsecure.errors import BudgetExceeded, PayloadTooLarge, PromptInjectionDetected, ServiceUnavailable

# An upload's slot outlives any ingestion (seconds for the largest document); it only bounds a slot a dead worker held.
UPLOAD_LEASE_SECONDS = 120


def document_create(*, owner, title: str, content: str) -> Document:
    """Screen and store a document and its chunks for the owner, within the owner's tier.

    A document the screen blocks is stored `quarantined`: its chunks are never retrieved until an operator
    releases it. A flagged one is retrievable and marked `flagged`. Raises PayloadTooLarge past the tier's
    document size or storage caps, or past the passages one document may make; RateLimited while the owner
    already has their allowed uploads in progress.
    """
    encoded = content.encode("utf-8")
    tier = tier_get(tier_id=owner.tier_id)
    if tier is None or len(encoded) > tier.max_document_bytes:
        raise PayloadTooLarge("The document is larger than your tier allows.")
    settings = ragsecure_settings
    with concurrency_slot(
        user_id=owner.pk, kind="uploads", limit=int(settings.CONCURRENT_UPLOADS_PER_USER), lease_seconds=UPLOAD_LEASE_SECONDS
    ):
        max_chunks = int(settings.DOCUMENT_MAX_CHUNKS)
        try:
            passages = chunk_text(content, max_chunks=max_chunks)
        except TooManyPassages:
            audit_verdict("ingestion", {"refused": "too_many_passages", "max_chunks": max_chunks})
            raise PayloadTooLarge(f"The document would make more than {max_chunks} passages; split it into smaller documents.") from None
        # The title reaches the model beside the passages, so it is screened with them.
        verdict = screen_or_block(f"{title}\n\n{content}", "document")
        status = verdict_status(verdict)
        verdict_record(kind="document", verdict=verdict, text=content)
        retrievable = status != ScreeningStatus.QUARANTINED
        with transaction.atomic():
            if not storage_reserve(user_id=owner.pk, tier=tier, size=len(encoded)):
                audit_verdict("storage", {"allowed": False, "max_documents": tier.max_documents, "max_stored_bytes": tier.max_stored_bytes})
                raise PayloadTooLarge("Your documents would exceed your tier's storage; delete some first.")
            document = Document.objects.create(
                owner_id=owner.pk,
                title=title,
                content=content,
                size=len(encoded),
                content_hash=hashlib.sha256(encoded).hexdigest(),
                screening_status=status,
                screening_score=verdict.score,
                screening_reasons=list(verdict.reasons),
                chunk_count=len(passages),
            )
            Chunk.objects.bulk_create(
                [
                    Chunk(document=document, owner_id=owner.pk, ordinal=ordinal, text=text, token_count=token_count(text),
                          retrievable=retrievable)
                    for ordinal, text in enumerate(passages)
                ],
                batch_size=500,
            )
            audit_note("document.create", document=str(document.id), size=document.size, chunks=len(passages), screening=status)
    return document


def _retrievability_change(*, documents: list[Document], quarantine: bool, actor, reason: str, action: str) -> int:
    """Move documents into or out of quarantine (chunks follow in the same transaction); how many changed."""
    changed_ids = []
    with transaction.atomic():
        for document in documents:
            # Conditional updates: of two operators acting at once, one changes the row and records it.
            row = Document.objects.filter(pk=document.pk)
            if quarantine:
                changed = row.exclude(screening_status=ScreeningStatus.QUARANTINED).update(
                    screening_status=ScreeningStatus.QUARANTINED, released_at=None, released_by=None
                )
            else:
                changed = row.filter(screening_status=ScreeningStatus.QUARANTINED).update(
                    screening_status=ScreeningStatus.FLAGGED, released_at=timezone.now(), released_by=actor
                )
            if changed:
                Chunk.objects.filter(document_id=document.pk).update(retrievable=not quarantine)
                changed_ids.append(str(document.pk))
        audit_note(action, actor=getattr(actor, "username", None) or "system", reason=reason, documents=changed_ids)
    return len(changed_ids)


def document_release(*, documents: list[Document], actor, reason: str) -> int:
    """Release quarantined documents: their chunks become retrievable; they stay marked `flagged`. Returns how many."""
    return _retrievability_change(documents=documents, quarantine=False, actor=actor, reason=reason, action="document.release")


def document_quarantine(*, documents: list[Document], actor, reason: str) -> int:
    """Quarantine documents by hand: their chunks stop being retrieved at once. Returns how many changed."""
    return _retrievability_change(documents=documents, quarantine=True, actor=actor, reason=reason, action="document.quarantine")


def document_delete(*, document: Document, actor) -> None:
    """Delete a document and its chunks (they leave the full-text index with them); its room returns to the owner's storage."""
    with transaction.atomic():
        document_id, owner_id = str(document.id), document.owner_id
        deleted, _ = Document.objects.filter(pk=document.pk).delete()
        if deleted:
            storage_release(user_id=owner_id, size=document.size)
        audit_note("document.delete", document=document_id, owner=owner_id, actor=getattr(actor, "username", None))


@contextmanager
def _answer_slot(*, user_id: int, answerer) -> Iterator[None]:
    """One of the caller's slots for answers that wait on a remote model (RateLimited when all are taken); none for local ones."""
    if not answerer.remote:
        yield
        return
    lease = float(ragsecure_settings.LLM_TOTAL_TIMEOUT_SECONDS) + 30
    with concurrency_slot(user_id=user_id, kind="queries", limit=int(ragsecure_settings.CONCURRENT_QUERIES_PER_USER), lease_seconds=lease):
        yield


def query_answer(*, user_id: int, tier, query: str, top_k: int) -> Answer:
    """Retrieve from the caller's own retrievable chunks, charge the retrieved bytes to the hourly budget, answer.

    Raises BudgetExceeded (nothing is returned past the budget), ServiceUnavailable (answerer down or too slow) or
    RateLimited (the caller already has their allowed answers waiting on a remote model). A backend's usage claim
    is never charged past what was reserved.
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
    with _answer_slot(user_id=user_id, answerer=answerer):
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
    # Never charge past the reservation, whatever the backend claims: the caller agreed to at most that much.
    spent = min(answer.prompt_tokens + answer.completion_tokens, reserved)
    budget_settle(user_id=user_id, kind="llm_tokens", delta=spent - reserved, window_seconds=86400)
    usage = {"reserved": reserved, "spent": spent, "limit": limit, "allowed": True}
    if answer.claimed_usage is not None:
        usage["claimed"] = {"prompt_tokens": answer.claimed_usage[0], "completion_tokens": answer.claimed_usage[1]}
    audit_verdict("llm_tokens", usage)
    try:
        answer, redacted = answer_guard(answer, canary=answer_canary())
    except CanaryLeaked:
        # The model was steered into revealing its instructions: withhold the answer, say nothing specific.
        audit_verdict("answer_guard", {"canary_leaked": True})
        audit_outcome("blocked")
        raise PromptInjectionDetected() from None
    audit_verdict("answer_guard", {"canary_leaked": False, "redacted_fields": redacted})
    return answer
