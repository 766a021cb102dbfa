"""App config for the project package: registers the system checks."""

from django.apps import AppConfig


class RagsecureConfig(AppConfig):
    name = "ragsecure"
    verbose_name = "ragsecure"

    def ready(self) -> None:
        from ragsecure import checks, schema  # noqa: F401
