"""Documents a user uploads and the chunks retrieval searches."""

import uuid

from django.conf import settings
from django.db import models


class ScreeningStatus(models.TextChoices):
    CLEAN = "clean"
    FLAGGED = "flagged"
    QUARANTINED = "quarantined"


class Document(models.Model):
    """One uploaded text, owned by one user; only its owner ever retrieves from it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=200)
    content = models.TextField()
    size = models.PositiveIntegerField(help_text="UTF-8 bytes of the content.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the content.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    screening_status = models.CharField(max_length=16, choices=ScreeningStatus.choices, default=ScreeningStatus.CLEAN)
    screening_score = models.FloatField(default=0.0)
    screening_reasons = models.JSONField(default=list, blank=True, help_text="What the screen found (for staff only).")
    released_at = models.DateTimeField(null=True, blank=True, help_text="When an operator released it from quarantine.")
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
    )
    chunk_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="document_owner_recent")]
        permissions = [("release_document", "Can release a quarantined document")]

    def __str__(self) -> str:
        return self.title


class Chunk(models.Model):
    """A passage of a document. `owner` and `retrievable` are copied from the document so that
    retrieval filters inside the full-text query itself, never after ranking."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    retrievable = models.BooleanField(default=True)

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="chunk_document_ordinal")]
        # token_count rides along so that a retriever reads an owner's collection statistics from the index alone.
        indexes = [models.Index(fields=["owner", "retrievable", "token_count"], name="chunk_owner_retrievable_len")]
