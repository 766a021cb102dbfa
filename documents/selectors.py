"""Reads for documents, always scoped to the caller: another user's document does not exist for them."""

import uuid

from django.db.models import QuerySet

from documents.models import Document


def document_list(*, owner_id: int) -> QuerySet[Document]:
    """The owner's documents, newest first, without their content."""
    return Document.objects.filter(owner_id=owner_id).defer("content").order_by("-created_at", "id")


def document_get(*, owner_id: int, document_id: uuid.UUID) -> Document | None:
    """The owner's document with this id, or None (also when it belongs to someone else)."""
    return Document.objects.filter(owner_id=owner_id, pk=document_id).first()


def document_get_any(*, document_id: uuid.UUID) -> Document | None:
    """Any user's document (for the `admin` scope only)."""
    return Document.objects.filter(pk=document_id).first()
