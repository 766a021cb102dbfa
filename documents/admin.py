"""Documents in the admin: owner, size, screening status and an escaped preview; content is never edited here."""

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from documents.models import Document
from ragsecure.admin_actions import ReadOnlyAdminMixin

PREVIEW_CHARS = 2000


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("title", "owner", "size", "chunk_count", "screening_status", "screening_score", "created_at")
    list_filter = ("screening_status", "created_at")
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username", "=id", "content_hash")
    date_hierarchy = "created_at"
    fields = ("id", "title", "owner", "size", "chunk_count", "content_hash", "screening_status", "screening_score",
              "created_at", "updated_at", "preview")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).defer("content")

    @admin.display(description="content preview")
    def preview(self, obj: Document) -> str:
        text = Document.objects.filter(pk=obj.pk).values_list("content", flat=True).first() or ""
        more = "…" if len(text) > PREVIEW_CHARS else ""
        # Uploaded text is attacker-controlled: format_html escapes it.
        return format_html('<pre style="white-space: pre-wrap">{}{}</pre>', text[:PREVIEW_CHARS], more)
