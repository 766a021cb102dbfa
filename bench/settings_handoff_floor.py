"""Benchmark-only settings: audit off, plus the bare durable hand-off of `bench/handoff_floor.py` on every request."""

from bench.settings_audit_off import *  # noqa: F403
from bench.settings_audit_off import MIDDLEWARE

MIDDLEWARE = ["bench.handoff_floor.HandoffFloorMiddleware", *MIDDLEWARE]
