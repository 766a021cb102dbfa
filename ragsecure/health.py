"""Liveness and readiness probes."""

import ipaddress

from django.conf import settings
from django.contrib.auth import get_user
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ragsecure.net import client_ip
from ragsecure.redis_gate import redis_configured, redis_gate


def readiness_detail_allowed(request: Request) -> bool:
    """Which backend is down is for the operators: callers on this host (probes) and signed-in staff."""
    if ipaddress.ip_address(client_ip(request)).is_loopback:
        return True
    # The probe authenticates no one through DRF; a staff member's admin session says who they are.
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    user = get_user(request._request)
    return bool(user.is_authenticated and user.is_staff)


def database_ready() -> bool:
    """True when the default database answers a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


class HealthzApi(APIView):
    """200 while the process runs."""

    audit_action = "service.healthz"
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # probes are never throttled

    @extend_schema(operation_id="healthz", auth=[], responses={200: {"type": "object", "properties": {"status": {"type": "string"}}}})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyzApi(APIView):
    """200 ok/degraded while the database answers (degraded without Redis); 503 when it does not. The checks behind the
    status are shown to loopback callers and staff only."""

    audit_action = "service.readyz"
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []  # probes are never throttled

    @extend_schema(operation_id="readyz", auth=[], responses={200: {"type": "object"}, 503: {"type": "object"}})
    def get(self, request: Request) -> Response:
        checks = {"database": "ok" if database_ready() else "unavailable"}
        if redis_configured():
            checks["redis"] = "ok" if redis_gate.available() else "unavailable"
        else:
            checks["redis"] = "local"
        shown = checks if readiness_detail_allowed(request) else {}
        if checks["database"] != "ok":
            return Response({"status": "unavailable", "checks": shown}, status=503)
        overall = "ok" if checks["redis"] in ("ok", "local") else "degraded"
        return Response({"status": overall, "checks": shown})
