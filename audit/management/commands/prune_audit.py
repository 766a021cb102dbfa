"""Delete audit entries older than a number of days, leaving signed anchors so that what remains still verifies."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.context import command_audit
from audit.services import audit_prune


class Command(BaseCommand):
    help = "Delete audit entries older than DAYS; each pruned chain gets a signed anchor where it now starts."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than", type=int, required=True, dest="days", metavar="DAYS")

    def handle(self, *args, days: int, **options) -> None:
        if days < 1:
            raise CommandError("--older-than must be at least 1 day.")
        cutoff = timezone.now() - timedelta(days=days)
        with command_audit("prune_audit") as audit:
            deleted, chains, refused = audit_prune(cutoff=cutoff)
            audit.detail.update({"older_than_days": days, "deleted": deleted, "chains": chains})
            if refused:
                audit.detail["chains_left_alone"] = refused
                audit.outcome = "error"
        self.stdout.write(f"{deleted} entr{'y' if deleted == 1 else 'ies'} older than {days} day(s) deleted from {chains} chain(s)")
        if refused:
            for problem in refused:
                self.stderr.write(f"not pruned: {problem}")
            raise CommandError(f"{len(refused)} chain(s) not pruned: their old entries do not verify (run verify_audit_chain)")
