"""Benchmark-only settings: the local settings without the audit middleware, to measure what auditing costs."""

from ragsecure.settings.local import *  # noqa: F403
from ragsecure.settings.local import MIDDLEWARE

MIDDLEWARE = [name for name in MIDDLEWARE if name != "audit.middleware.AuditMiddleware"]
