"""Rotate the audit HMAC key: a new key signs from now on; every older key stays in the ring to verify what it signed."""

import secrets

from django.core.management.base import BaseCommand, CommandError

from audit.chain import audit_key_ring
from audit.context import audit_note, command_audit
from ragsecure.secrets import SecretsError, secrets_provider


class Command(BaseCommand):
    help = "Make a new audit HMAC key the signing key; older keys stay in the ring so verify_audit_chain verifies across rotations."

    def handle(self, *args, **options) -> None:
        with command_audit("rotate_audit_key"):
            secrets_provider().invalidate("audit-hmac-key")
            try:
                ring = audit_key_ring()
            except SecretsError as exc:
                raise CommandError(f"The audit-hmac-key secret cannot be read: {type(exc).__name__}") from None
            rotated = ring.rotated(secrets.token_urlsafe(48))
            try:
                secrets_provider().put("audit-hmac-key", rotated.serialise())
            except SecretsError as exc:
                raise CommandError(f"Cannot store the rotated audit key ring: {exc}") from None
            audit_note("audit_key.rotate", active_key_id=rotated.active.key_id, keys=len(rotated.keys))
        self.stdout.write(
            f"audit key {rotated.active.key_id} signs from each process's next read of the secret; "
            f"{len(rotated.keys) - 1} older key(s) kept for verification"
        )
