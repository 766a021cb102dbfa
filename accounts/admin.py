"""Admin for security staff: users (tier, scopes, activity), tiers, scopes and token records, with audited actions."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts import services
from accounts.admin_login import LockoutAdminAuthenticationForm
from accounts.api_keys import ApiKeyUnavailable
from accounts.models import ApiKey, RefreshTokenRecord, RevokedAccessToken, Scope, Tier, TokenFamily, User
from accounts.selectors import user_usage
from ragsecure.admin_actions import ReadOnlyAdminMixin, ReasonForm, action_with_reason
from ragsecure.errors import ValidationFailed

# Staff sign in under the same lockout as the API (per username and client IP, growing cool-off).
admin.site.login_form = LockoutAdminAuthenticationForm


class ChangeTierForm(ReasonForm):
    tier = forms.ModelChoiceField(queryset=Tier.objects.all())


class CreateApiKeyForm(ReasonForm):
    name = forms.CharField(max_length=100, help_text="What the key is for (the calling service).")
    scopes = forms.ModelMultipleChoiceField(
        queryset=Scope.objects.all(), required=False, help_text="None chosen: all of the user's grants."
    )
    expires_in_days = forms.IntegerField(min_value=1, max_value=3650, initial=90)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "tier", "is_active", "is_staff", "granted_scopes", "last_login", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser", "tier", "scopes", "groups")
    list_select_related = ("tier",)
    search_fields = ("username", "email")
    filter_horizontal = ("groups", "user_permissions", "scopes")
    readonly_fields = ("token_generation", "last_login", "date_joined", "current_usage")
    fieldsets = DjangoUserAdmin.fieldsets + (("API access", {"fields": ("tier", "scopes", "token_generation", "current_usage")}),)
    add_fieldsets = DjangoUserAdmin.add_fieldsets + (("API access", {"fields": ("tier", "scopes")}),)
    actions = ["revoke_all_tokens", "change_tier", "deactivate_users", "reset_limits", "create_api_key"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("scopes")

    @admin.display(description="scopes")
    def granted_scopes(self, obj: User) -> str:
        return ", ".join(scope.name for scope in obj.scopes.all())

    @admin.display(description="current usage")
    def current_usage(self, obj: User) -> str:
        if obj.pk is None:
            return "-"
        usage = user_usage(user_id=obj.pk, tier=obj.tier)
        return (
            f"{usage['requests_remaining']} requests left this minute; {usage['tokens_remaining_today']} LLM tokens left today; "
            f"{usage['retrieved_bytes_remaining']} retrieved bytes left this hour"
        )

    def has_reset_rate_limits_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.reset_rate_limits")

    @admin.action(description="Reset rate limits and budgets of these users", permissions=["reset_rate_limits"])
    def reset_limits(self, request: HttpRequest, queryset: QuerySet):
        def apply(users: QuerySet, data: dict) -> str:
            services.user_limits_reset(users=list(users), actor=request.user, reason=data["reason"])
            return f"Reset the limits of {len(users)} user(s)."

        return action_with_reason(
            self, request, queryset, action="reset_limits", title="Reset rate limits",
            description="Clears the request log, today's LLM-token and this hour's retrieved-bytes usage, and sign-in lockouts.",
            apply=apply,
        )

    def has_revoke_tokens_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.revoke_tokens")

    def has_change_user_tier_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_user_tier")

    def has_deactivate_user_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.deactivate_user")

    @admin.action(description="Create an API key for this service account (shown once)", permissions=["revoke_tokens"])
    def create_api_key(self, request: HttpRequest, queryset: QuerySet):
        # The key is shown on the page that answers the form, never in a message (messages may travel in a cookie).
        form = CreateApiKeyForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            if queryset.count() != 1:
                self.message_user(request, "Select exactly one user to create an API key for.", messages.ERROR)
                return None
            data = form.cleaned_data
            try:
                created = services.api_key_create(
                    user=queryset.get(), name=data["name"], scopes=[scope.name for scope in data["scopes"]] or None,
                    expires_at=timezone.now() + timedelta(days=data["expires_in_days"]), actor=request.user,
                )
            except ValidationFailed as exc:
                problems = "; ".join(message for found in (exc.fields or {}).values() for message in found)
                self.message_user(request, f"Not created: {problems}", messages.ERROR)
                return None
            except ApiKeyUnavailable:
                self.message_user(request, "Not created: the api-key-hmac-key secret is unavailable.", messages.ERROR)
                return None
            context = {**self.admin_site.each_context(request), "key": created.key, "raw": created.raw, "opts": self.model._meta}
            response = TemplateResponse(request, "admin/ragsecure/api_key_created.html", context)
            response["Cache-Control"] = "no-store"
            return response
        return action_with_reason(
            self, request, queryset, action="create_api_key", title="Create an API key",
            description="The key is shown once, on the next page; only its digest is stored.", apply=lambda *_: "",
            form_class=CreateApiKeyForm,
        )

    @admin.action(description="Revoke all tokens of these users", permissions=["revoke_tokens"])
    def revoke_all_tokens(self, request: HttpRequest, queryset: QuerySet):
        def apply(users: QuerySet, data: dict) -> str:
            for user in users:
                services.user_tokens_revoke(user=user, actor=request.user, reason=data["reason"])
            return f"Revoked every token of {len(users)} user(s)."

        return action_with_reason(
            self, request, queryset, action="revoke_all_tokens", title="Revoke all tokens",
            description="Every access and refresh token of these users stops working on their next request.", apply=apply,
        )

    @admin.action(description="Change tier of these users", permissions=["change_user_tier"])
    def change_tier(self, request: HttpRequest, queryset: QuerySet):
        def apply(users: QuerySet, data: dict) -> str:
            changed = services.user_tier_change(users=list(users), tier=data["tier"], actor=request.user, reason=data["reason"])
            return f"Moved {changed} user(s) to tier {data['tier'].name}."

        return action_with_reason(
            self, request, queryset, action="change_tier", title="Change tier",
            description="The new tier applies from each user's next request.", apply=apply, form_class=ChangeTierForm,
        )

    @admin.action(description="Deactivate these users", permissions=["deactivate_user"])
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet):
        def apply(users: QuerySet, data: dict) -> str:
            changed = services.user_deactivate(users=list(users), actor=request.user, reason=data["reason"])
            return f"Deactivated {changed} user(s); their tokens are revoked."

        return action_with_reason(
            self, request, queryset, action="deactivate_users", title="Deactivate users",
            description="These users can no longer sign in, and their tokens stop working at once.", apply=apply,
        )


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = (
        "name", "requests_per_minute", "llm_tokens_per_day", "max_top_k", "max_document_bytes", "retrieved_bytes_per_hour",
        "max_documents", "max_stored_bytes",
    )
    search_fields = ("name",)


@admin.register(Scope)
class ScopeAdmin(admin.ModelAdmin):
    list_display = ("name", "description")
    search_fields = ("name",)


class RefreshTokenInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = RefreshTokenRecord
    fields = ("jti", "issued_at", "expires_at", "consumed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(TokenFamily)
class TokenFamilyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "user", "scopes", "created_at", "last_refreshed_at", "expires_at", "revoked_at", "revoke_reason", "client_ip")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "created_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "id", "client_ip")
    date_hierarchy = "created_at"
    inlines = [RefreshTokenInline]
    actions = ["revoke_families"]

    def has_revoke_tokens_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.revoke_tokens")

    @admin.action(description="Revoke these token families", permissions=["revoke_tokens"])
    def revoke_families(self, request: HttpRequest, queryset: QuerySet):
        def apply(families: QuerySet, data: dict) -> str:
            revoked = sum(services.token_family_revoke(family=family, actor=request.user, reason=data["reason"]) for family in families)
            return f"Revoked {revoked} token family(ies)."

        return action_with_reason(
            self, request, queryset, action="revoke_families", title="Revoke token families",
            description="The refresh tokens of these families, and access tokens minted from them, stop working at once.", apply=apply,
        )


@admin.register(RevokedAccessToken)
class RevokedAccessTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("jti", "user", "revoked_at", "expires_at", "reason")
    list_select_related = ("user",)
    search_fields = ("jti", "user__username")
    date_hierarchy = "revoked_at"


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("key_id", "name", "user", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at", "revoke_reason")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "expires_at")
    list_select_related = ("user",)
    search_fields = ("key_id", "name", "user__username")
    exclude = ("digest",)
    date_hierarchy = "created_at"
    actions = ["revoke_keys"]

    def has_revoke_tokens_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.revoke_tokens")

    @admin.action(description="Revoke these API keys", permissions=["revoke_tokens"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet):
        def apply(keys: QuerySet, data: dict) -> str:
            revoked = services.api_key_revoke(keys=list(keys), actor=request.user, reason=data["reason"])
            return f"Revoked {revoked} API key(s)."

        return action_with_reason(
            self, request, queryset, action="revoke_keys", title="Revoke API keys",
            description="These keys stop working at once (within 30 s at most if the cache cannot be told).", apply=apply,
        )
