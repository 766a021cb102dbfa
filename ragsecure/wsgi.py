"""WSGI entry point (gunicorn ragsecure.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsecure.settings.local")
application = get_wsgi_application()

from ragsecure.schema_api import schema_document  # noqa: E402 - needs the settings and apps loaded above

# Generated now, once, rather than by the first requests racing each other to build it.
schema_document()
