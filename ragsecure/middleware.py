"""Project-wide middleware: request ids, the JSON error shape outside DRF, body size limits, cache headers."""

import re
import uuid
from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

from ragsecure.conf import ragsecure_settings
from ragsecure.errors import UNKNOWN_HOST_MESSAGE, BadRequest, MalformedRequest, PayloadTooLarge, error_for_status, json_error_response

Middleware = Callable[[HttpRequest], HttpResponse]
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Paths answered by Django's own HTML pages (the admin console and its static files).
HTML_PREFIXES = ("/admin/", "/static/")


def client_request_id(request: HttpRequest) -> str | None:
    """The client's X-Request-ID when it is a safe token (at most 64 of [A-Za-z0-9._-]); None otherwise."""
    value = request.META.get("HTTP_X_REQUEST_ID", "")
    if value and SAFE_REQUEST_ID.fullmatch(value) and value not in (".", ".."):
        return value
    return None


class RequestIdMiddleware:
    """Gives each request a server id, echoed in X-Request-ID, and keeps a safe client id beside it."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = uuid.uuid4().hex
        request.client_request_id = client_request_id(request)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        if request.client_request_id:
            response["X-Client-Request-ID"] = request.client_request_id
        return response


class AllowedHostMiddleware:
    """Answers a Host header outside ALLOWED_HOSTS with 400 `bad_request` saying so, before anything else reads the host."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost:
            return json_error_response(BadRequest(UNKNOWN_HOST_MESSAGE), getattr(request, "request_id", ""))
        return self.get_response(request)


class ApiErrorMiddleware:
    """Replaces any non-JSON error response outside the admin (Django's 404/500 pages, debug pages) with the error shape."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or request.path.startswith(HTML_PREFIXES):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        replacement = json_error_response(error_for_status(response.status_code), getattr(request, "request_id", ""))
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replacement[header] = response[header]
        return replacement


class BodySizeLimitMiddleware:
    """Refuses a declared body over MAX_REQUEST_BYTES with 413 before anything reads it."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH")
        if declared:
            if not (declared.isascii() and declared.isdigit()) or len(declared) > 18:
                return json_error_response(MalformedRequest("Invalid Content-Length."), request.request_id)
            if int(declared) > int(ragsecure_settings.MAX_REQUEST_BYTES):
                return json_error_response(PayloadTooLarge(), request.request_id)
        return self.get_response(request)


class CacheControlMiddleware:
    """Marks API responses `Cache-Control: no-store` unless a view chose its own caching."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(HTML_PREFIXES) and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
            response["Pragma"] = "no-cache"
        return response


class RateLimitHeadersMiddleware:
    """Adds RateLimit-Limit/-Remaining/-Reset for the limit that applied to this request, and Retry-After on a 429."""

    def __init__(self, get_response: Middleware) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        decision = getattr(request, "rate_decision", None)
        if decision is not None:
            response["RateLimit-Limit"] = str(decision.limit)
            response["RateLimit-Remaining"] = str(decision.remaining)
            response["RateLimit-Reset"] = str(decision.reset_seconds)
            if response.status_code == 429 and "Retry-After" not in response:
                response["Retry-After"] = str(decision.retry_after)
        return response
