"""Verify the audit log: exit 0 when intact, 1 naming the first altered, inserted or missing entry of each broken chain."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.chain import audit_key_ring
from audit.stream import stream_path
from audit.verify import audit_log_verify
from ragsecure.secrets import SecretsError


class Command(BaseCommand):
    help = "Check every audit chain's HMACs, sequence and signed checkpoints (from the database and the JSON-lines stream)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--stream", action="append", default=None, dest="streams",
            help="A JSON-lines audit stream to read signed checkpoints from (repeatable; default: the local stream file).",
        )

    def handle(self, *args, streams: list[str] | None, **options) -> None:
        try:
            key = audit_key_ring()  # every key: entries name the one that signed them
        except SecretsError:
            raise CommandError("The audit-hmac-key secret is unavailable: cannot verify.") from None
        paths = [Path(item) for item in streams] if streams else [stream_path()]
        report = audit_log_verify(key=key, stream_paths=paths)
        if report.intact:
            self.stdout.write(f"audit log intact: {report.entries} entries in {report.chains} chain(s)")
            return
        for problem in report.problems:
            self.stderr.write(f"{problem.kind.upper()}: {problem}")
        raise CommandError(f"audit log NOT intact: {len({problem.chain_id for problem in report.problems})} chain(s) broken")
