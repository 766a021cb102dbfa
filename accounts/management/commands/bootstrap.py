"""Idempotent set-up: default tiers, scopes and staff roles; local secrets; a first superuser."""

import secrets

from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import defaults
from accounts.keyring import KeyRingError, key_ring, key_ring_store, rotated_key_ring
from accounts.models import Scope, Tier, User
from audit.context import audit_note, command_audit
from ragsecure.secrets import SecretNotFound, SecretsError, secrets_provider


class Command(BaseCommand):
    help = "Create default tiers, scopes and staff groups, local secrets, and a superuser when none exists."

    def handle(self, *args, **options) -> None:
        # Secrets first: the audit entry of this command is signed with one of them.
        self._secrets()
        with command_audit("bootstrap") as audit:
            with transaction.atomic():
                self._scopes()
                self._tiers()
                self._roles()
            self._superuser()
            if not audit.events:
                audit.detail["changed"] = False

    def _scopes(self) -> None:
        for name, description in defaults.SCOPES.items():
            _, created = Scope.objects.get_or_create(name=name, defaults={"description": description})
            if created:
                audit_note("scope.create", scope=name)
                self.stdout.write(f"scope {name}: created")

    def _tiers(self) -> None:
        # Existing tiers keep whatever operators set in the admin.
        for name, limits in defaults.TIERS.items():
            _, created = Tier.objects.get_or_create(name=name, defaults=limits)
            if created:
                audit_note("tier.create", tier=name)
                self.stdout.write(f"tier {name}: created")

    def _roles(self) -> None:
        for role, names in defaults.ROLES.items():
            group, created = Group.objects.get_or_create(name=role)
            permissions = []
            for qualified in names:
                app_label, codename = qualified.split(".")
                permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
                if permission is None:
                    raise CommandError(f"Permission {qualified} is missing: run `manage.py migrate` first.")
                permissions.append(permission)
            if created or set(group.permissions.all()) != set(permissions):
                group.permissions.set(permissions)
                audit_note("group.sync", group=role, permissions=len(permissions))
                self.stdout.write(f"group {role}: {len(permissions)} permissions")

    def _secrets(self) -> None:
        provider = secrets_provider()
        try:
            key_ring()
        except KeyRingError:
            if not any(backend.writable for backend in provider.backends):
                raise CommandError("No jwt-signing-keys secret and the secrets backend is read-only: provision it.") from None
            key_ring_store(rotated_key_ring(None))
            self.stdout.write("secret jwt-signing-keys: created")
        for name in ("audit-hmac-key", "api-key-hmac-key"):
            try:
                provider.get(name)
            except SecretNotFound:
                try:
                    provider.put(name, secrets.token_urlsafe(48))
                except SecretsError as exc:
                    raise CommandError(f"Secret {name} is missing and cannot be created: {exc}") from None
                self.stdout.write(f"secret {name}: created")

    def _superuser(self) -> None:
        if User.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(18)
        username = "admin"
        while User.objects.filter(username=username).exists():
            username = f"admin-{secrets.token_hex(3)}"
        User.objects.create_superuser(username=username, email="", password=password)
        audit_note("user.create_superuser", user=username)
        self.stdout.write(self.style.WARNING(f"superuser {username} created; password (shown once): {password}"))
