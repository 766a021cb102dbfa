"""Users, tiers, scopes, and the records behind token revocation."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

SCOPE_NAME_VALIDATOR = RegexValidator(
    r"^[a-z][a-z0-9_]{0,30}(:[a-z][a-z0-9_]{0,30})?\Z",
    "A scope is lower-case letters, digits and underscores, optionally `resource:action`.",
)


class Scope(models.Model):
    """A permission a user may be granted and a token may carry (`query:read`, `admin`, ...)."""

    name = models.CharField(max_length=64, unique=True, validators=[SCOPE_NAME_VALIDATOR])
    description = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tier(models.Model):
    """Usage limits shared by the users who hold the tier; a limit of 0 denies."""

    name = models.SlugField(max_length=32, unique=True)
    requests_per_minute = models.PositiveIntegerField()
    llm_tokens_per_day = models.PositiveBigIntegerField()
    max_top_k = models.PositiveIntegerField()
    max_document_bytes = models.PositiveBigIntegerField()
    retrieved_bytes_per_hour = models.PositiveBigIntegerField()
    max_documents = models.PositiveIntegerField(default=1000, help_text="Documents a user may hold at once.")
    max_stored_bytes = models.PositiveBigIntegerField(default=100_000_000, help_text="UTF-8 bytes of documents a user may hold at once.")

    class Meta:
        ordering = ["requests_per_minute", "name"]

    def __str__(self) -> str:
        return self.name


ATOMIC_USER_FIELDS = frozenset({"token_generation", "documents_stored", "bytes_stored"})


class User(AbstractUser):
    """An API caller or staff member. `token_generation` is the per-user "revoke everything" marker."""

    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    scopes = models.ManyToManyField(Scope, blank=True, related_name="users")
    # Tokens carry the generation they were issued under; bumping it (only ever
    # with an atomic UPDATE, see accounts.services) revokes every older token.
    token_generation = models.PositiveIntegerField(default=0, editable=False)
    # What the user's documents take, against the tier's caps; changed only by atomic UPDATEs (accounts.services).
    documents_stored = models.PositiveIntegerField(default=0, editable=False)
    bytes_stored = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        permissions = [
            ("revoke_tokens", "Can revoke a user's tokens"),
            ("change_user_tier", "Can change a user's tier"),
            ("deactivate_user", "Can deactivate a user"),
            ("reset_rate_limits", "Can reset a user's rate limits"),
        ]

    def _get_session_auth_hash(self, secret=None) -> str:
        """Django's session hash over the password, and over the token generation too: revoking everything a user
        holds (which bumps it) also ends their admin sessions on their next request."""
        return salted_hmac(
            "accounts.User.get_session_auth_hash", f"{self.password}\x00{self.token_generation}", secret=secret, algorithm="sha256"
        ).hexdigest()

    def save(self, *args, **kwargs) -> None:
        password_changed = self._password is not None and not self._state.adding
        if not self._state.adding and kwargs.get("update_fields") is None:
            # Never write the atomically updated counters from a possibly stale in-memory copy:
            # that could undo a revocation, or a document's storage, made since this object was loaded.
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name not in ATOMIC_USER_FIELDS
            ]
        super().save(*args, **kwargs)
        if password_changed:
            from accounts.services import user_tokens_revoke

            user_tokens_revoke(user=self, actor=None, reason="password changed")


class TokenFamily(models.Model):
    """All refresh tokens descended from one login, and the access tokens minted from them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="token_families")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    revoke_reason = models.CharField(max_length=255, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "token families"

    def __str__(self) -> str:
        return f"{self.user_id}:{self.id}"


class RefreshTokenRecord(models.Model):
    """One issued refresh token; `consumed_at` is set exactly once, atomically, when it is exchanged."""

    jti = models.CharField(max_length=64, primary_key=True)
    family = models.ForeignKey(TokenFamily, on_delete=models.CASCADE, related_name="refresh_tokens")
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]


class RevokedAccessToken(models.Model):
    """The access-token denylist (authoritative copy; Redis caches it until `expires_at`)."""

    jti = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="revoked_access_tokens")
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-revoked_at"]


class CacheSyncState(models.Model):
    """Marks the Redis revocation cache stale when a revocation could not be written to it."""

    name = models.CharField(max_length=32, primary_key=True)
    dirty_since = models.DateTimeField(null=True, blank=True)


class ApiKey(models.Model):
    """A service caller's key: `rsk_<key_id>_<secret>`, stored as an HMAC-SHA256 digest of the secret (shown once)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key_id = models.CharField(max_length=16, unique=True, help_text="The public part of the key, after rsk_.")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. the calling service.")
    digest = models.CharField(max_length=64, help_text="HMAC-SHA256 of the secret part; the secret itself is never stored.")
    scopes = models.JSONField(default=list, help_text="A subset of the user's grants when it was created.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=255, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most every few minutes.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        permissions = [("revoke_api_keys", "Can revoke API keys")]

    def __str__(self) -> str:
        return f"rsk_{self.key_id} ({self.name})"
