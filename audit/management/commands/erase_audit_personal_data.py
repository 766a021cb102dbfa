"""Erase a person's personal data (username, IP address, user agent) from the audit log, keeping it verifiable."""

from django.core.management.base import BaseCommand, CommandError

from audit.context import command_audit
from audit.services import audit_personal_erase


class Command(BaseCommand):
    help = (
        "Blank the username, IP address and user agent of every audit entry of one person (by username or IP address). "
        "Each erased entry carries a signed erasure mark, so verify_audit_chain still passes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="")
        parser.add_argument("--client-ip", default="", dest="client_ip")
        parser.add_argument("--reason", required=True, help="why (a data-subject request's reference, say); recorded")

    def handle(self, *args, username: str, client_ip: str, reason: str, **options) -> None:
        if not (username or client_ip):
            raise CommandError("Name the person: --username or --client-ip.")
        if not reason.strip():
            raise CommandError("--reason must not be empty.")
        with command_audit("erase_audit_personal_data") as audit:
            # The command's own entry records why and how many, never whom (that would keep what is being erased).
            chosen_by = [name for name, value in (("username", username), ("client_ip", client_ip)) if value]
            audit.detail.update({"reason": reason, "by": chosen_by})
            try:
                erased = audit_personal_erase(username=username, client_ip=client_ip)
            except ValueError as exc:
                audit.outcome = "denied"
                raise CommandError(f"{exc}.") from None
            audit.detail["erased_entries"] = erased
        self.stdout.write(f"personal data erased from {erased} audit entr{'y' if erased == 1 else 'ies'}")
