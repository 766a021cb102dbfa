"""Test URLconf: the project's routes plus views that need a scope, declare none, or fail unexpectedly."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ragsecure.urls import urlpatterns as project_urlpatterns

SECRET_DETAIL = "boom-detail-that-must-not-leak /etc/shadow"


class QueryScopedApi(APIView):
    required_scopes = ("query:read",)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class TwoScopesApi(APIView):
    required_scopes = ("documents:read", "documents:write")

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class UndeclaredScopesApi(APIView):
    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class ExplodingApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError(SECRET_DETAIL)


def exploding_django_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET_DETAIL)


urlpatterns = [
    path("api/v1/test/scoped/", QueryScopedApi.as_view()),
    path("api/v1/test/two-scopes/", TwoScopesApi.as_view()),
    path("api/v1/test/undeclared/", UndeclaredScopesApi.as_view()),
    path("api/v1/test/explode/", ExplodingApi.as_view()),
    path("api/v1/test/explode-django/", exploding_django_view),
    *project_urlpatterns,
]
