"""URLs of the document and query endpoints (under /api/v1/)."""

from django.urls import path

from documents import apis

urlpatterns = [
    path("documents/", apis.DocumentListCreateApi.as_view(), name="documents"),
    path("documents/<uuid:document_id>/", apis.DocumentDetailApi.as_view(), name="document"),
    path("query/", apis.QueryApi.as_view(), name="query"),
]
