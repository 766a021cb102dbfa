"""Read-only audit log for security staff: filters, search, a detail view with verdicts, CSV and JSON-lines export."""

import json
import re
from datetime import timedelta

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.context import audit_note
from audit.export import export_csv, export_jsonl
from audit.models import AuditCheckpoint, AuditEntry
from ragsecure.admin_actions import ReadOnlyAdminMixin

# The form of server request ids and token ids (uuid4().hex).
_ID_TERM = re.compile(r"[0-9a-f]{32}")


class RecentFilter(admin.SimpleListFilter):
    title = "time"
    parameter_name = "within"
    WINDOWS = {
        "1h": ("Last hour", timedelta(hours=1)),
        "24h": ("Last 24 hours", timedelta(days=1)),
        "7d": ("Last 7 days", timedelta(days=7)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.WINDOWS.items()]

    def queryset(self, request, queryset):
        window = self.WINDOWS.get(self.value() or "")
        return queryset.filter(created_at__gte=timezone.now() - window[1]) if window else queryset


class UserFilter(admin.SimpleListFilter):
    title = "user"
    parameter_name = "username"

    def lookups(self, request, model_admin):
        names = AuditEntry.objects.exclude(username="").order_by().values_list("username", flat=True).distinct()[:100]
        return [(name, name) for name in sorted(names)]

    def queryset(self, request, queryset):
        return queryset.filter(username=self.value()) if self.value() else queryset


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "action", "outcome", "status", "method", "short_path", "username", "client_ip", "duration_ms")
    list_filter = (RecentFilter, "outcome", "status", "action", "auth_kind", UserFilter, "created_at")
    search_fields = ("path", "request_id", "client_request_id", "=client_ip", "username", "token_jti")
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    actions = ["export_as_csv", "export_as_jsonl"]
    fields = (
        "id", "created_at", "action", "outcome", "status", "method", "path", "query_string", "duration_ms", "request_id",
        "client_request_id", "actor_link", "username", "auth_kind", "token_jti", "scopes", "client_ip", "user_agent", "verdicts",
        "chain_id", "seq", "prev_mac", "mac", "personal_erased_at",
    )
    readonly_fields = fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """A server request id or a token id (32 hex digits) is looked up exactly, through the indexes on both columns,
        instead of scanning every row's text; when neither matches, the term is searched as any other."""
        term = search_term.strip().lower()
        if _ID_TERM.fullmatch(term):
            exact = queryset.filter(Q(request_id=term) | Q(token_jti=term))
            if exact.exists():
                return exact, False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="path")
    def short_path(self, obj: AuditEntry) -> str:
        return obj.path if len(obj.path) <= 80 else obj.path[:79] + "…"

    @admin.display(description="user")
    def actor_link(self, obj: AuditEntry) -> str:
        """The acting user's admin page while the account exists; the id it had otherwise."""
        if obj.actor_id is None:
            return "—"
        user = get_user_model().objects.filter(pk=obj.actor_id).only("pk", "username").first()
        if user is None:
            return f"#{obj.actor_id} (deleted)"
        url = reverse(f"admin:{user._meta.app_label}_{user._meta.model_name}_change", args=[user.pk])
        return format_html('<a href="{}">#{} {}</a>', url, user.pk, user.get_username())

    @admin.display(description="verdicts and details")
    def verdicts(self, obj: AuditEntry) -> str:
        # format_html escapes the (attacker-influenced) JSON text.
        return format_html("<pre>{}</pre>", json.dumps(obj.detail, indent=2, sort_keys=True, ensure_ascii=False))

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("audit.view_auditentry")

    def _export(self, request: HttpRequest, queryset: QuerySet, *, fmt: str) -> StreamingHttpResponse:
        # Fix the selection now: rows written while the file streams (this export's own entry
        # included) are not part of it, and the audited count matches the file.
        queryset = queryset.filter(created_at__lte=timezone.now())
        entries = queryset.order_by("created_at").iterator(chunk_size=1000)
        audit_note(
            "admin.audit_export", actor=request.user.get_username(), format=fmt, count=queryset.count(), targets=_export_targets(request)
        )
        if fmt == "csv":
            response = StreamingHttpResponse(export_csv(entries), content_type="text/csv; charset=utf-8")
        else:
            response = StreamingHttpResponse(export_jsonl(entries), content_type="application/x-ndjson")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{"csv" if fmt == "csv" else "jsonl"}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Export selected entries as CSV", permissions=["export"])
    def export_as_csv(self, request: HttpRequest, queryset: QuerySet):
        return self._export(request, queryset, fmt="csv")

    @admin.action(description="Export selected entries as JSON lines", permissions=["export"])
    def export_as_jsonl(self, request: HttpRequest, queryset: QuerySet):
        return self._export(request, queryset, fmt="jsonl")


# A search term or a filter on a person (username, address, user agent) is personal data: recorded in the
# export's own entry, erasing that person later could not reach it (the entry's MAC covers its detail).
_PERSONAL_FILTER = re.compile(r"^q$|username|user_agent|client_ip|actor")


def _export_targets(request: HttpRequest) -> dict:
    """What an export took: the list's filters and search as the reviewer set them (personal values left out), and
    either every entry they match or the entries ticked (their ids, the first 100)."""
    filters = {
        key: "[personal, not recorded]" if _PERSONAL_FILTER.search(key) else value[:200]
        for key, value in list(request.GET.items())[:20]
        if key not in ("o", "p")
    }
    if request.POST.get("select_across") == "1":
        return {"filters": filters, "selection": "all matching"}
    selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
    return {"filters": filters, "selection": selected[:100], "selected": len(selected)}


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "chain_id", "seq", "kind")
    list_filter = ("kind",)
    search_fields = ("chain_id",)
    date_hierarchy = "created_at"
