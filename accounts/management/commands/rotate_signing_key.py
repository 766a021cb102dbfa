"""Rotate the JWT signing key with no failed request: publish a new key for verification, then let it sign."""

import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.keyring import KeyRing, KeyRingError, key_ring, key_ring_store, promoted_key_ring, rotated_key_ring, staged_key_ring
from audit.context import audit_note, command_audit
from ragsecure.conf import ragsecure_settings
from ragsecure.secrets import SecretsError, secrets_provider

# Beyond one cache TTL, for a worker whose cached copy was read just before the key was staged (at most 5 s).
PUBLISH_MARGIN_SECONDS = 5.0


class Command(BaseCommand):
    help = (
        "Rotate the signing key without failing a request: --stage publishes a new key for verification only, --promote "
        "(at least one secrets cache TTL later) makes it sign. With neither, both, waiting the TTL in between. Old keys "
        "verify until every token they signed has expired."
    )

    def add_arguments(self, parser) -> None:
        step = parser.add_mutually_exclusive_group()
        step.add_argument("--stage", action="store_true", help="publish a new key for verification only")
        step.add_argument("--promote", action="store_true", help="make the staged key the signing key")
        parser.add_argument(
            "--force", action="store_true",
            help="rotate again within the refresh-token lifetime, or promote before every worker can have seen the key",
        )

    def handle(self, *args, **options) -> None:
        force = options["force"]
        with command_audit("rotate_signing_key"):
            ring = self._current()
            if ring is None:
                self._store(rotated_key_ring(None), "signing_key.create")
                self.stdout.write(f"no key ring yet: created one, active signing key {key_ring().active.kid}")
                return
            if not options["promote"]:
                ring = self._stage(ring, force=force)
            if options["stage"]:
                return
            if not options["promote"]:
                wait = self._publish_wait()
                self.stdout.write(f"waiting {wait:.0f} s for every worker to load the staged key before it signs")
                time.sleep(wait)
            self._promote(self._current() or ring, force=force)

    def _current(self) -> KeyRing | None:
        secrets_provider().invalidate()
        try:
            return key_ring()
        except KeyRingError:
            return None

    @staticmethod
    def _publish_wait() -> float:
        ttl = float(ragsecure_settings.SECRETS_CACHE_TTL)
        return ttl + min(PUBLISH_MARGIN_SECONDS, ttl)

    def _store(self, ring: KeyRing, action: str, **details) -> None:
        try:
            key_ring_store(ring)
        except SecretsError as exc:
            raise CommandError(f"Cannot store the new key ring: {exc}") from None
        audit_note(action, active_kid=ring.active.kid, keys=len(ring.keys), **details)

    def _stage(self, ring: KeyRing, *, force: bool) -> KeyRing:
        now = timezone.now()
        if ring.staged is not None:
            self.stdout.write(f"key {ring.staged.kid} is already staged")
            return ring
        last = ring.last_retired_at
        if last is not None and now - last < ragsecure_settings.REFRESH_TOKEN_LIFETIME and not force:
            raise CommandError(
                f"The signing key was last rotated at {last.isoformat()}, within the refresh-token lifetime; keys it retired "
                "still verify live tokens. Run again later, or with --force."
            )
        staged = staged_key_ring(ring, now)
        self._store(staged, "signing_key.stage", staged_kid=staged.staged.kid)
        self.stdout.write(f"staged key {staged.staged.kid} for verification; it signs once promoted")
        return staged

    def _promote(self, ring: KeyRing, *, force: bool) -> None:
        staged = ring.staged
        if staged is None:
            raise CommandError("No key is staged: run rotate_signing_key --stage first.")
        published_for = timezone.now() - staged.created_at
        if published_for < timedelta(seconds=self._publish_wait()) and not force:
            raise CommandError(
                f"Key {staged.kid} was staged {published_for.total_seconds():.0f} s ago; workers cache the ring for "
                f"{ragsecure_settings.SECRETS_CACHE_TTL} s. Promote it later, or with --force."
            )
        promoted = promoted_key_ring(ring)
        self._store(promoted, "signing_key.promote", retained=len(promoted.keys) - 1)
        self.stdout.write(f"active signing key {promoted.active.kid}; {len(promoted.keys) - 1} older key(s) kept for verification")
