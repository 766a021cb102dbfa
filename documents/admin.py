"""Documents in the admin: owner, size, screening status and an escaped preview; content is never edited here."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from documents import services
from documents.models import Document
from ragsecure.admin_actions import ReadOnlyAdminMixin, action_with_reason

PREVIEW_CHARS = 2000


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("title", "owner", "size", "chunk_count", "screening_status", "screening_score", "created_at")
    list_filter = ("screening_status", ("released_at", admin.EmptyFieldListFilter), "created_at")
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username", "=id", "content_hash")
    date_hierarchy = "created_at"
    fields = ("id", "title", "owner", "size", "chunk_count", "content_hash", "screening_status", "screening_score",
              "screening_reasons", "released_at", "released_by", "created_at", "updated_at", "preview")
    readonly_fields = fields
    actions = ["release", "quarantine"]

    def has_release_document_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("documents.release_document")

    @admin.action(description="Release from quarantine (retrievable again, kept flagged)", permissions=["release_document"])
    def release(self, request: HttpRequest, queryset: QuerySet):
        def apply(documents: QuerySet, data: dict) -> str:
            count = services.document_release(documents=list(documents), actor=request.user, reason=data["reason"])
            return f"Released {count} quarantined document(s)."

        return action_with_reason(
            self, request, queryset, action="release", title="Release quarantined documents",
            description="Their passages can be retrieved and sent to the model again. Only quarantined documents change.",
            apply=apply,
        )

    @admin.action(description="Quarantine (never retrieved until released)", permissions=["release_document"])
    def quarantine(self, request: HttpRequest, queryset: QuerySet):
        def apply(documents: QuerySet, data: dict) -> str:
            count = services.document_quarantine(documents=list(documents), actor=request.user, reason=data["reason"])
            return f"Quarantined {count} document(s)."

        return action_with_reason(
            self, request, queryset, action="quarantine", title="Quarantine documents",
            description="Their passages stop being retrieved at once, until an operator releases them.",
            apply=apply,
        )

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).defer("content")

    @admin.display(description="content preview")
    def preview(self, obj: Document) -> str:
        text = Document.objects.filter(pk=obj.pk).values_list("content", flat=True).first() or ""
        more = "…" if len(text) > PREVIEW_CHARS else ""
        # Uploaded text is attacker-controlled: format_html escapes it.
        return format_html('<pre style="white-space: pre-wrap">{}{}</pre>', text[:PREVIEW_CHARS], more)
