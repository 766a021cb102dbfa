"""WSGI entry point (gunicorn ragsecure.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsecure.settings.local")
application = get_wsgi_application()
