"""Create an API user with a tier and granted scopes; the password comes from RAGSECURE_PASSWORD or stdin."""

import os
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Scope, Tier, User
from accounts.services import user_create
from audit.context import command_audit


class Command(BaseCommand):
    help = "Create an API user: create_api_user USERNAME --tier TIER --scope SCOPE [--scope ...]"

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--tier", required=True, help="Tier name (free, pro, enterprise, ...).")
        parser.add_argument("--scope", action="append", default=[], dest="scopes", help="A scope to grant; repeat for more.")

    def handle(self, *args, username: str, tier: str, scopes: list[str], **options) -> None:
        tier_row = Tier.objects.filter(name=tier).first()
        if tier_row is None:
            known = ", ".join(Tier.objects.values_list("name", flat=True)) or "none; run bootstrap"
            raise CommandError(f"Unknown tier {tier!r} (known: {known}).")
        scope_rows = list(Scope.objects.filter(name__in=scopes))
        unknown = sorted(set(scopes) - {scope.name for scope in scope_rows})
        if unknown:
            known = ", ".join(Scope.objects.values_list("name", flat=True)) or "none; run bootstrap"
            raise CommandError(f"Unknown scope(s) {', '.join(unknown)} (known: {known}).")
        if User.objects.filter(username=username).exists():
            raise CommandError(f"User {username!r} already exists.")
        password = self._password()
        with command_audit("create_api_user") as audit:
            try:
                user_create(username=username, password=password, tier=tier_row, scopes=scope_rows)
            except ValidationError as exc:
                audit.outcome = "denied"
                audit.detail["rejected"] = "password validation"
                raise CommandError("Password rejected: " + " ".join(exc.messages)) from None
        self.stdout.write(f"user {username} created (tier {tier_row.name}; scopes {', '.join(sorted(scopes)) or 'none'})")

    def _password(self) -> str:
        password = os.environ.get("RAGSECURE_PASSWORD")
        if password is None:
            if sys.stdin is None:
                raise CommandError("Set RAGSECURE_PASSWORD or pipe the password on stdin.")
            password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CommandError("Empty password: set RAGSECURE_PASSWORD or pipe the password on stdin.")
        return password
