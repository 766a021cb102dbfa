"""Run the host audit writer: the workers of this host send their entries here and share its commits."""

import signal

from django.core.management.base import BaseCommand, CommandError

from audit.writer import AuditWriterServer
from ragsecure.conf import ragsecure_settings


class Command(BaseCommand):
    help = (
        "Store the audit entries of every worker on this host in shared commits (workers find it through "
        "RAGSECURE_AUDIT_WRITER_SOCKET). Runs until SIGTERM or SIGINT."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--socket", default=None, help="Unix socket path (default: the AUDIT_WRITER_SOCKET setting).")
        parser.add_argument(
            "--gather-ms", type=float, default=4.0,
            help="While requests overlap, wait this long for more entries to share a commit (default 4; 0: never).",
        )
        parser.add_argument("--max-batch", type=int, default=500, help="Most entries in one INSERT (default 500).")

    def handle(self, *args, socket: str | None, max_batch: int, gather_ms: float, **options) -> None:
        path = socket or ragsecure_settings.AUDIT_WRITER_SOCKET
        if not path:
            raise CommandError("No socket: pass --socket or set RAGSECURE_AUDIT_WRITER_SOCKET.")
        if not 1 <= max_batch <= 10_000:
            raise CommandError("--max-batch must be between 1 and 10000.")
        if not 0 <= gather_ms <= 1000:
            raise CommandError("--gather-ms must be between 0 and 1000.")
        server = AuditWriterServer(path, max_batch=max_batch, gather_seconds=gather_ms / 1000)
        try:
            server.bind()
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot listen on {path}: {exc}") from None
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: server.stopped.set())
        self.stdout.write(f"audit writer listening on {path}", ending="\n")
        self.stdout.flush()
        server.serve()
        self.stdout.write(f"audit writer stopped: {server.entries} entries in {server.batches} commits")
