"""Admin actions that ask for a reason (and any other input) on an intermediate page before calling a service."""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


class ReasonForm(forms.Form):
    reason = forms.CharField(
        min_length=3, max_length=255, widget=forms.TextInput(attrs={"size": 60}), help_text="Recorded in the audit log."
    )


def action_with_reason(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    title: str,
    description: str,
    apply: Callable[[QuerySet, dict], str],
    form_class: type[forms.Form] = ReasonForm,
) -> HttpResponse | None:
    """Show a form for the selected objects; on a valid submission run `apply(queryset, cleaned_data)` and report its message."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        message = apply(queryset, form.cleaned_data)
        modeladmin.message_user(request, message, messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "description": description,
        "queryset": queryset,
        "form": form,
        "action": action,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/ragsecure/action_with_reason.html", context)


class ReadOnlyAdminMixin:
    """Security records are evidence: nobody adds, edits or deletes them in the admin."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
