"""Load audit entries spooled while the database was unavailable; safe to run repeatedly."""

from django.core.management.base import BaseCommand

from audit.context import command_audit
from audit.services import audit_spool_replay


class Command(BaseCommand):
    help = "Insert spooled audit entries into the database (idempotent by entry id) and empty the spool."

    def handle(self, *args, **options) -> None:
        with command_audit("replay_audit_spool") as audit:
            loaded, rejected = audit_spool_replay()
            audit.detail.update({"loaded": loaded, "unreadable": rejected})
        self.stdout.write(f"{loaded} spooled entr{'y' if loaded == 1 else 'ies'} loaded")
        if rejected:
            self.stderr.write(
                f"{rejected} unreadable or refused line(s) kept in the .rejected.jsonl file beside the spool (refused: another row "
                "holds the entry's place in its chain; run verify_audit_chain)"
            )
