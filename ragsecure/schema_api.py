"""The schema endpoint: one OpenAPI document per process, generated at start-up.

Apart from ragsecure.schema, which DRF's settings import while views are still loading.
"""

import threading

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response

_schema_lock = threading.Lock()
_schema: dict | None = None


def schema_document() -> dict:
    """The OpenAPI document, generated once per process (at start-up by wsgi.py) and shared by every request.

    drf-spectacular's generator is not safe to run in several threads at once, and the document never changes
    while the process runs.
    """
    global _schema
    if _schema is None:
        with _schema_lock:
            if _schema is None:
                _schema = SchemaGenerator().get_schema(request=None, public=True)
    return _schema


class SchemaApi(SpectacularAPIView):
    """The OpenAPI 3 schema (JSON or YAML by content negotiation), served from the one generated document."""

    def _get_schema_response(self, request):
        return Response(
            data=schema_document(),
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, None)}"'},
        )
