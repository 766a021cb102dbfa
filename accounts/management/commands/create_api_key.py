"""Create an API key for a service account; the key is printed once and never stored."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.api_keys import ApiKeyUnavailable
from accounts.models import User
from accounts.services import api_key_create
from audit.context import command_audit
from ragsecure.errors import ValidationFailed


class Command(BaseCommand):
    help = "Create an API key: create_api_key USERNAME --name NAME [--scope SCOPE ...] [--expires-in-days N]"

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What the key is for (the calling service).")
        parser.add_argument("--scope", action="append", dest="scopes", help="A scope of the user's grants; repeat for more (default: all).")
        parser.add_argument("--expires-in-days", type=int, default=90, help="Days until the key expires (default 90).")

    def handle(self, *args, username: str, name: str, scopes: list[str] | None, expires_in_days: int, **options) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Unknown user {username!r}.")
        if not 1 <= expires_in_days <= 3650:
            raise CommandError("--expires-in-days must be between 1 and 3650.")
        with command_audit("create_api_key") as audit:
            try:
                created = api_key_create(
                    user=user, name=name, scopes=scopes, expires_at=timezone.now() + timedelta(days=expires_in_days), actor=None
                )
            except ValidationFailed as exc:
                audit.outcome = "denied"
                raise CommandError("; ".join(message for messages in (exc.fields or {}).values() for message in messages)) from None
            except ApiKeyUnavailable as exc:
                raise CommandError(f"{exc}; run `manage.py bootstrap`.") from None
        self.stdout.write(f"API key for {username} ({name}), expires {created.key.expires_at:%Y-%m-%d}; shown once, store it now:")
        self.stdout.write(created.raw)
