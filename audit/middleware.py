"""One audit entry per HTTP request, whatever its status, recorded before the response leaves."""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from audit.context import AuditContext, audit_scope
from audit.flood import flood_count, flood_kind
from audit.services import audit_entry_write, audit_fields, checkpoint_timer, outcome_for_status
from audit.spool import AuditUnavailable
from ragsecure.conf import ragsecure_settings
from ragsecure.errors import ServiceUnavailable, json_error_response
from ragsecure.net import client_certificate_subject, client_ip, header_text

logger = logging.getLogger("ragsecure.audit")


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
        return {"auth_kind": user.auth_kind, "actor_id": user.pk, "username": user.username, "token_jti": user.token["jti"]}
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


def _summarised_flood(request: HttpRequest, response: HttpResponse, context: AuditContext, caller: dict) -> bool:
    """True when the request is one of many alike and was counted into its minute's summary instead of its own entry.

    The first of its kind in a minute keeps its full entry (marked as such), so every kind of flood shows in detail once.
    """
    if not ragsecure_settings.AUDIT_FLOOD_SUMMARIES:
        return False
    kind = flood_kind(
        status=response.status_code, method=request.method or "", caller_kind=caller["auth_kind"], actor_id=caller.get("actor_id"),
        action=context.action, detail=context.detail,
    )
    if kind is None:
        return False
    count = flood_count(ip=client_ip(request), kind=kind)
    if count is None:
        return False  # Redis cannot count it: written in full, nothing lost
    checkpoint_timer.ensure_started()  # its ticks write the summary once the minute has ended
    if count == 1:
        context.detail["flood"] = {"kind": kind, "first_of_minute": True}
        return False
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
        if response.status_code in (200, 304) and request.path.startswith("/" + (settings.STATIC_URL or "static/").lstrip("/")):
            # A static file served (the admin's CSS and scripts): not a request to the service worth an entry; a
            # failed static request (a scan of /static/) is still written.
            return response
        caller = _caller(request, context)
        subject = client_certificate_subject(request)
        if subject is not None:
            context.detail["client_cert"] = subject  # the calling service, as its certificate names it
        if _summarised_flood(request, response, context, caller):
            return response
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
                    user_agent=header_text(request, "HTTP_USER_AGENT"),
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
