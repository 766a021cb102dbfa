"""Domain exceptions and the one exception handler that maps everything to the API's error shape."""

import logging
from typing import Any

from django.core.exceptions import DisallowedHost, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response

from audit.context import audit_verdict

logger = logging.getLogger("ragsecure.errors")
UNKNOWN_HOST_MESSAGE = "The Host header names a host this service does not serve."


class RagsecureError(drf_exceptions.APIException):
    """Base of every error the API reports; `code` is machine-readable, `message` safe to show."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "error"
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, fields: dict | None = None, headers: dict | None = None) -> None:
        self.message = message or self.message
        self.fields = fields
        self.extra_headers = headers or {}
        super().__init__(detail=self.message, code=self.code)


class ValidationFailed(RagsecureError):
    code = "validation_error"
    message = "The request is invalid."


class PromptInjectionDetected(RagsecureError):
    code = "prompt_injection_detected"
    message = "The request was refused by the content screen."


class MalformedRequest(RagsecureError):
    code = "malformed_request"
    message = "The request body could not be parsed."


class BadRequest(RagsecureError):
    code = "bad_request"
    message = "The request was rejected as malformed."


class AuthenticationFailed(RagsecureError):
    status_code = status.HTTP_401_UNAUTHORIZED
    code = "authentication_failed"
    message = "Authentication credentials were missing or incorrect."


class TokenInvalid(AuthenticationFailed):
    code = "token_invalid"
    message = "The access token is invalid."


class TokenExpired(AuthenticationFailed):
    code = "token_expired"
    message = "The access token has expired."


class TokenRevoked(AuthenticationFailed):
    code = "token_revoked"
    message = "The token has been revoked."


class InsufficientScope(RagsecureError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "insufficient_scope"
    message = "The token does not carry the scope this operation requires."

    def __init__(self, required_scopes: tuple[str, ...] | list[str]) -> None:
        self.required_scopes = tuple(required_scopes)
        super().__init__()


class PermissionDenied(RagsecureError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"
    message = "You do not have permission to perform this action."


class NotFound(RagsecureError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    message = "Not found."


class MethodNotAllowed(RagsecureError):
    status_code = status.HTTP_405_METHOD_NOT_ALLOWED
    code = "method_not_allowed"
    message = "This method is not allowed on this resource."


class NotAcceptable(RagsecureError):
    status_code = status.HTTP_406_NOT_ACCEPTABLE
    code = "not_acceptable"
    message = "The requested response format is not available; use application/json."


class PayloadTooLarge(RagsecureError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"
    message = "The request body is too large."


class RateLimited(RagsecureError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "rate_limited"
    message = "Too many requests; retry later."


class BudgetExceeded(RagsecureError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "budget_exceeded"
    message = "The usage budget for this period is spent; retry later."


class ServiceUnavailable(RagsecureError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"
    message = "The service is temporarily unavailable; retry later."


class InternalError(RagsecureError):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    code = "internal_error"
    message = "An internal error occurred; it has been logged."


# Generic errors by HTTP status, for responses produced outside DRF (Django 404/500, middleware).
ERRORS_BY_STATUS: dict[int, type[RagsecureError]] = {
    400: BadRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    413: PayloadTooLarge,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_for_status(status_code: int) -> RagsecureError:
    """The generic domain error for an HTTP status (500 for anything unknown)."""
    return ERRORS_BY_STATUS.get(status_code, InternalError)()


def current_request_id(request: Any) -> str:
    """The server's id for this request (set by RequestIdMiddleware)."""
    django_request = getattr(request, "_request", request)
    return getattr(django_request, "request_id", "") or ""


def error_body(error: RagsecureError, request_id: str) -> dict:
    """The one error shape: {"error": {code, message, request_id, fields?}}."""
    body: dict[str, Any] = {"code": error.code, "message": error.message, "request_id": request_id}
    if error.fields is not None:
        body["fields"] = error.fields
    return {"error": body}


def error_headers(error: RagsecureError) -> dict[str, str]:
    """Headers a client needs to act on the error (RFC 6750 challenges, Retry-After)."""
    headers = dict(error.extra_headers)
    if isinstance(error, InsufficientScope):
        scope = " ".join(error.required_scopes)
        headers["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{scope}"'
    elif isinstance(error, (TokenInvalid, TokenExpired, TokenRevoked)):
        headers["WWW-Authenticate"] = 'Bearer realm="ragsecure", error="invalid_token"'
    elif isinstance(error, AuthenticationFailed):
        headers.setdefault("WWW-Authenticate", 'Bearer realm="ragsecure"')
    return headers


def json_error_response(error: RagsecureError, request_id: str) -> JsonResponse:
    """A plain Django JSON response carrying the error (for middleware and Django handlers)."""
    audit_verdict("error", error.code)
    response = JsonResponse(error_body(error, request_id), status=error.status_code)
    for name, value in error_headers(error).items():
        response[name] = value
    return response


def _flatten_validation(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {str(key): _flatten_validation(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten_validation(item) for item in detail]
    return str(detail)


def to_domain_error(exc: Exception) -> RagsecureError:
    """Translate DRF, simplejwt and Django exceptions into domain errors."""
    if isinstance(exc, RagsecureError):
        return exc
    if isinstance(exc, drf_exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return ValidationFailed(fields=_flatten_validation(detail))
    if isinstance(exc, drf_exceptions.ParseError):
        return MalformedRequest()
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return MalformedRequest("Unsupported content type; send application/json.")
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return AuthenticationFailed()
    if isinstance(exc, (drf_exceptions.PermissionDenied, DjangoPermissionDenied)):
        return PermissionDenied()
    if isinstance(exc, (drf_exceptions.NotFound, Http404)):
        return NotFound()
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return MethodNotAllowed()
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return NotAcceptable()
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(exc.wait or 1)
        return RateLimited(headers={"Retry-After": str(max(1, wait))})
    if isinstance(exc, RecursionError):
        return MalformedRequest()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, TooManyFieldsSent):
        return ValidationFailed("Too many fields in the request.", fields={"non_field_errors": ["Too many fields."]})
    if isinstance(exc, DisallowedHost):
        return BadRequest(UNKNOWN_HOST_MESSAGE)
    if isinstance(exc, SuspiciousOperation):
        return BadRequest()
    if isinstance(exc, drf_exceptions.APIException):
        return error_for_status(exc.status_code)
    return InternalError()


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception becomes the error shape; unexpected ones are logged, never shown."""
    error = to_domain_error(exc)
    request = context.get("request")
    if isinstance(error, InternalError) and not isinstance(exc, RagsecureError):
        logger.exception("Unhandled error in %s", type(context.get("view")).__name__, exc_info=exc)
    audit_verdict("error", error.code)
    response = Response(error_body(error, current_request_id(request)), status=error.status_code)
    for name, value in error_headers(error).items():
        response[name] = value
    return response
