"""Rotate the JWT signing key: a new key signs from now on, old keys verify until their tokens expire."""

from django.core.management.base import BaseCommand, CommandError

from accounts.keyring import KeyRingError, key_ring, key_ring_store, rotated_key_ring
from audit.context import audit_note, command_audit
from ragsecure.secrets import SecretsError


class Command(BaseCommand):
    help = "Make a new Ed25519 key the active signing key; keep old keys for verification until tokens they signed expire."

    def handle(self, *args, **options) -> None:
        try:
            current = key_ring()
        except KeyRingError:
            current = None
        ring = rotated_key_ring(current)
        with command_audit("rotate_signing_key"):
            try:
                key_ring_store(ring)
            except SecretsError as exc:
                raise CommandError(f"Cannot store the new key ring: {exc}") from None
            audit_note("signing_key.rotate", active_kid=ring.active.kid, retained=len(ring.keys) - 1)
        retired = len(ring.keys) - 1
        self.stdout.write(f"active signing key {ring.active.kid}; {retired} older key(s) kept for verification")
