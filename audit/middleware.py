"""One audit entry per HTTP request, whatever its status, recorded before the response leaves."""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from audit.context import AuditContext, audit_scope
from audit.flood import flood_count
from audit.services import audit_entry_write, audit_fields, checkpoint_timer
from audit.spool import AuditUnavailable
from ragsecure.errors import ServiceUnavailable, json_error_response
from ragsecure.net import client_ip

logger = logging.getLogger("ragsecure.audit")


def outcome_for_status(status: int) -> str:
    """The outcome a status implies when nothing more specific was recorded."""
    if status == 429:
        return "throttled"
    if status >= 500:
        return "error"
    if status >= 400:
        return "denied"
    return "allowed"


def _caller(request: HttpRequest, context: AuditContext) -> dict:
    """Who made the request, without triggering any lookup that has not happened already."""
    user = request.__dict__.get("user")
    if user is not None and hasattr(user, "_wrapped"):
        # Django's lazy session user: resolve only if the request carried a session.
        if not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
            user = None
        else:
            try:
                user.is_authenticated  # noqa: B018 - resolves the session and its user (database reads)
            except DatabaseError:
                # The entry must still be written (to the spool, if the database is down): the caller stays unnamed.
                context.detail["session_user"] = "unresolved: the database did not answer"
                return {"auth_kind": "session", "username": ""}
    from accounts.authentication import Principal

    if isinstance(user, Principal):
        return {"auth_kind": "jwt", "actor_id": user.pk, "username": user.username, "token_jti": user.token["jti"]}
    if user is not None and getattr(user, "is_authenticated", False):
        return {"auth_kind": "session", "actor_id": user.pk, "username": user.get_username()}
    if context.actor is not None:
        return {"auth_kind": context.actor_kind, "actor_id": context.actor.pk, "username": context.actor.get_username()}
    return {"auth_kind": "anonymous", "username": context.claimed_username}


def _view_action(request: HttpRequest, view_func: Callable) -> tuple[str, bool]:
    """(action, declared): a view's declared `audit_action` names its entry; otherwise the URL name does,
    until a service records a more specific action (an admin action, say)."""
    view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    action = getattr(view_class, "audit_action", None)
    if isinstance(action, dict):  # per HTTP method
        action = action.get(request.method or "")
    if action:
        return action, True
    match = request.resolver_match
    if match is not None and match.url_name:
        prefix = "admin." if match.app_name == "admin" or match.namespace == "admin" else "http."
        return prefix + match.url_name, False
    return "http.request", False


def _summarised_flood(request: HttpRequest, response: HttpResponse, context: AuditContext) -> bool:
    """True when this is an anonymous request rejected by a per-IP limiter and it was counted into its minute's summary."""
    verdict = context.detail.get("rate_limit")
    if response.status_code != 429 or not isinstance(verdict, dict) or not str(verdict.get("scope", "")).startswith("ip:"):
        return False
    if verdict.get("allowed") is not False:
        return False  # a 429 for another reason (a sign-in lockout) keeps its own entry
    if _caller(request, context)["auth_kind"] != "anonymous":
        return False
    if not flood_count(ip=client_ip(request), scope=verdict["scope"][3:]):
        return False
    checkpoint_timer.ensure_started()  # its ticks write the summary once the minute has ended
    return True


class AuditMiddleware:
    """Writes the request's entry after the response is built; answers 503 if the entry cannot be made durable."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        context = AuditContext(action="http.request", action_explicit=False)
        request.audit = context
        with audit_scope(context):
            response = self.get_response(request)
        duration_ms = (time.perf_counter() - started) * 1000
        if _summarised_flood(request, response, context):
            return response
        caller = _caller(request, context)
        try:
            audit_entry_write(
                audit_fields(
                    action=context.action,
                    outcome=context.outcome or outcome_for_status(response.status_code),
                    request_id=getattr(request, "request_id", ""),
                    client_request_id=getattr(request, "client_request_id", None),
                    scopes=context.scopes,
                    method=request.method or "",
                    path=request.path,
                    query_string=request.META.get("QUERY_STRING", ""),
                    status=response.status_code,
                    duration_ms=duration_ms,
                    client_ip=client_ip(request),
                    user_agent=request.META.get("HTTP_USER_AGENT", ""),
                    detail=context.as_detail(),
                    **caller,
                )
            )
        except AuditUnavailable as exc:
            logger.critical("request %s refused: its audit entry could not be recorded (%s)", request.request_id, exc)
            return json_error_response(ServiceUnavailable(), request.request_id)
        return response

    def process_view(self, request: HttpRequest, view_func: Callable, view_args, view_kwargs) -> None:
        context = getattr(request, "audit", None)
        if context is not None:
            action, declared = _view_action(request, view_func)
            context.set_action(action, explicit=declared)
