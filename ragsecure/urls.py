"""Root URLs: the API under /api/v1/, probes, JWKS, schema and the admin."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from accounts.apis import JwksApi
from ragsecure.health import HealthzApi, ReadyzApi
from ragsecure.schema_api import SchemaApi

admin.site.site_header = "ragsecure security console"
admin.site.site_title = "ragsecure"

api_v1 = [
    path("auth/", include("accounts.urls")),
    path("", include("documents.urls")),
    path("schema/", SchemaApi.as_view(), name="schema"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path(".well-known/jwks.json", JwksApi.as_view(), name="jwks"),
    path("healthz", HealthzApi.as_view(), name="healthz"),
    path("readyz", ReadyzApi.as_view(), name="readyz"),
    path("admin", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
