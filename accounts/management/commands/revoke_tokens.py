"""Revoke every token a user holds, effective on their next request."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import user_tokens_revoke
from audit.context import command_audit


class Command(BaseCommand):
    help = "Revoke all access and refresh tokens of a user."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, dest="username")
        parser.add_argument("--reason", default="revoked from the command line")

    def handle(self, *args, username: str, reason: str, **options) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"Unknown user {username!r}.")
        with command_audit("revoke_tokens"):
            user_tokens_revoke(user=user, actor=None, reason=reason)
        self.stdout.write(f"all tokens of {username} revoked")
