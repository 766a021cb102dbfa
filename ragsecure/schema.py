"""OpenAPI generation: the bearer security scheme and the error responses every operation can return."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable description; never contains secrets.")
    request_id = serializers.CharField(help_text="The server's id of this request (also in X-Request-ID).")
    fields = serializers.DictField(required=False, help_text="Per-field problems (validation_error only).")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    "400": "validation_error, prompt_injection_detected, malformed_request or bad_request",
    "401": "authentication_failed, token_invalid, token_expired or token_revoked",
    "403": "insufficient_scope or permission_denied",
    "404": "not_found",
    "413": "payload_too_large",
    "429": "rate_limited or budget_exceeded (see Retry-After)",
    "503": "service_unavailable",
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        scheme = build_bearer_security_scheme_object(header_name="HTTP_AUTHORIZATION", token_prefix="Bearer", bearer_format="JWT")
        scheme["description"] = "An EdDSA-signed access token from POST /api/v1/auth/token/."
        return scheme


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "`ApiKey rsk_<key_id>_<secret>`: a service account's key (manage.py create_api_key).",
        }


class RagsecureAutoSchema(AutoSchema):
    """AutoSchema that documents the error responses each operation can produce, in the one error shape."""

    def _error_codes(self) -> list[str]:
        public = any(isinstance(permission, AllowAny) for permission in self.view.get_permissions())
        codes = ["400"] if self.method in ("POST", "PUT", "PATCH") or not public else []
        if not public:
            codes += ["401", "403"]
        codes += [code for code in getattr(self.view, "extra_error_codes", ()) if code not in codes]
        if "{" in self.path:
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("413")
        if self.path.startswith("/api/"):
            codes.append("429")
        codes.append("503")
        return codes

    def get_tags(self) -> list[str]:
        parts = [part for part in self.path.split("/") if part]
        if parts[:2] == ["api", "v1"] and len(parts) > 2:
            return [parts[2]]
        return ["service"]

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in sorted(self._error_codes()):
            if code not in responses:
                body = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                body["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = body
        return responses

