"""Audit entries (one per HTTP request or state-changing command) and the signed checkpoints of their chains."""

import uuid

from django.conf import settings
from django.db import models


class Outcome(models.TextChoices):
    ALLOWED = "allowed"
    DENIED = "denied"
    THROTTLED = "throttled"
    BLOCKED = "blocked"
    ERROR = "error"


class AuthKind(models.TextChoices):
    JWT = "jwt"
    API_KEY = "api_key"
    SESSION = "session"
    PASSWORD = "password"
    ANONYMOUS = "anonymous"
    COMMAND = "command"


class AuditEntry(models.Model):
    """One request or command, chained to its writer's previous entry by an HMAC (see audit.chain)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(db_index=True)
    # Chain position: each writer (process) keeps its own chain, so no global lock is needed.
    chain_id = models.CharField(max_length=64)
    seq = models.PositiveBigIntegerField()
    prev_mac = models.CharField(max_length=64)
    mac = models.CharField(max_length=64)
    # Which audit key signed it (audit.chain.AuditKeyRing); empty for entries written before keys had ids.
    key_id = models.CharField(max_length=32, blank=True, default="")
    # Request identity
    request_id = models.CharField(max_length=64)
    client_request_id = models.CharField(max_length=64, blank=True)
    # Who
    # A foreign key without a database constraint: entries outlive their users and must never fail to insert
    # (nothing cascades, and a deleted user's entries keep the id they were written with).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    auth_kind = models.CharField(max_length=16, choices=AuthKind.choices)
    token_jti = models.CharField(max_length=64, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    # What
    method = models.CharField(max_length=16, blank=True)
    path = models.CharField(max_length=2048, blank=True)
    query_string = models.CharField(max_length=2048, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.FloatField(default=0)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # Few distinct values each: filtering on them scans by time (the created_at index) instead,
    # and every index here is paid on the request path of every request.
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    detail = models.JSONField(default=dict, blank=True)
    # Personal fields are covered by the MAC through salted digests, so erasing
    # them later (username, IP, user agent) leaves the chain verifiable.
    personal_salt = models.CharField(max_length=32)
    username_digest = models.CharField(max_length=64)
    client_ip_digest = models.CharField(max_length=64)
    user_agent_digest = models.CharField(max_length=64)
    personal_erased_at = models.DateTimeField(null=True, blank=True)
    # Set with the erasure time, by the erasure service only: a MAC over (entry id, erasure time). Blank personal
    # fields verify only under it, so an intruder cannot erase who did what and call it an erasure.
    personal_erasure_mac = models.CharField(max_length=64, null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"
        constraints = [models.UniqueConstraint(fields=["chain_id", "seq"], name="audit_entry_chain_seq")]
        # Plain B-tree indexes (no `LIKE` twins: the admin's search is case-insensitive and cannot use them),
        # each one paid on every request.
        indexes = [
            models.Index(fields=["actor", "created_at"], name="audit_actor_time"),
            models.Index(fields=["request_id"], name="audit_request_id"),
            models.Index(fields=["username"], name="audit_username"),
            # "Every request made with this leaked token": the admin finds a token id through this index.
            models.Index(fields=["token_jti"], name="audit_token_jti"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.outcome}"


class AuditCheckpoint(models.Model):
    """A signed statement "chain C had reached seq N with MAC M"; also written to the JSON-lines stream.

    kind `checkpoint` proves how far a chain went (truncation of its tail is
    detected); kind `anchor` records where a chain restarts after pruning.
    """

    chain_id = models.CharField(max_length=64, db_index=True)
    seq = models.PositiveBigIntegerField()
    entry_mac = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, default="checkpoint")
    created_at = models.DateTimeField()
    mac = models.CharField(max_length=64)
    key_id = models.CharField(max_length=32, blank=True, default="", help_text="The audit key that signed it.")

    class Meta:
        ordering = ["chain_id", "seq"]
