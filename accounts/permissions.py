"""Scope-based authorisation: each view declares `required_scopes`; the token's effective scopes must cover them."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.authentication import Principal
from audit.context import audit_scopes
from ragsecure.errors import AuthenticationFailed, InsufficientScope


class HasRequiredScopes(BasePermission):
    """Allows a request when its principal's effective scopes include every scope in the view's `required_scopes`."""

    def has_permission(self, request: Request, view) -> bool:
        """Return True, or raise AuthenticationFailed (no principal) or InsufficientScope (missing scope).

        A view without `required_scopes` is closed to everyone: forgetting to
        declare scopes must never open an endpoint.
        """
        if not isinstance(request.user, Principal):
            raise AuthenticationFailed()
        required = tuple(getattr(view, "required_scopes", None) or ())
        if not hasattr(view, "required_scopes"):
            raise InsufficientScope(("admin",))
        audit_scopes(required)
        if not set(required) <= request.user.scopes:
            raise InsufficientScope(required)
        return True
