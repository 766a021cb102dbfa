"""Test URLconf: the project's routes plus views that need an unheld scope, throttle, create, fail, or add audit notes."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.context import audit_note
from ragsecure.errors import RateLimited
from ragsecure.urls import urlpatterns as project_urlpatterns

EXPLOSION = "exploded with internal detail /etc/shadow"


class PublicApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class AdminScopedApi(APIView):
    audit_action = "test.admin_scoped"
    required_scopes = ("admin",)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class QueryScopedApi(APIView):
    audit_action = "test.query_scoped"
    required_scopes = ("query:read",)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class CreatedApi(PublicApi):
    audit_action = "test.create"

    def post(self, request: Request) -> Response:
        return Response({"id": 1}, status=status.HTTP_201_CREATED)


class RateLimitedApi(PublicApi):
    audit_action = "test.rate_limited"

    def get(self, request: Request) -> Response:
        raise RateLimited(headers={"Retry-After": "7"})


class ThrottledApi(PublicApi):
    audit_action = "test.throttled"

    def get(self, request: Request) -> Response:
        raise Throttled(wait=3)


class ExplodingApi(PublicApi):
    audit_action = "test.explode"

    def get(self, request: Request) -> Response:
        raise RuntimeError(EXPLOSION)


def exploding_django_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(EXPLOSION)


class NotingApi(PublicApi):
    """Two state changes in one request, as nested services would record them (no declared action: the notes name it)."""

    def post(self, request: Request) -> Response:
        audit_note("widget.create", widget="w-1", reason="first change")
        audit_note("widget.link", widget="w-1", target="w-2", reason="second change")
        return Response({"ok": True})


urlpatterns = [
    path("api/v1/test/admin-scoped/", AdminScopedApi.as_view()),
    path("api/v1/test/query-scoped/", QueryScopedApi.as_view()),
    path("api/v1/test/created/", CreatedApi.as_view()),
    path("api/v1/test/rate-limited/", RateLimitedApi.as_view()),
    path("api/v1/test/throttled/", ThrottledApi.as_view()),
    path("api/v1/test/explode/", ExplodingApi.as_view()),
    path("api/v1/test/explode-django/", exploding_django_view),
    path("api/v1/test/noting/", NotingApi.as_view()),
    *project_urlpatterns,
]
