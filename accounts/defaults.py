"""The defaults `bootstrap` creates: scopes, tiers and staff roles."""

SCOPES = {
    "query:read": "Ask questions over one's own documents.",
    "documents:read": "List and read one's own documents.",
    "documents:write": "Upload documents.",
    "admin": "Administer documents of every user.",
}

_TIER_FIELDS = (
    "requests_per_minute", "llm_tokens_per_day", "max_top_k", "max_document_bytes", "retrieved_bytes_per_hour", "max_documents",
    "max_stored_bytes",
)
TIERS = {
    name: dict(zip(_TIER_FIELDS, limits, strict=True))
    for name, limits in {
        "free": (10, 20_000, 5, 100_000, 2_000_000, 100, 10_000_000),
        "pro": (100, 500_000, 20, 1_000_000, 50_000_000, 10_000, 1_000_000_000),
        "enterprise": (1000, 10_000_000, 100, 1_000_000, 500_000_000, 100_000, 20_000_000_000),
    }.items()
}

# Model permissions as "app_label.codename". Security models stay read-only for
# everyone but superusers; operators act only through audited admin actions.
VIEWER_PERMISSIONS = (
    "accounts.view_user",
    "accounts.view_tier",
    "accounts.view_scope",
    "accounts.view_tokenfamily",
    "accounts.view_revokedaccesstoken",
    "accounts.view_apikey",
    "audit.view_auditentry",
    "audit.view_auditcheckpoint",
    "documents.view_document",
)
OPERATOR_PERMISSIONS = VIEWER_PERMISSIONS + (
    "accounts.revoke_tokens",
    "accounts.change_user_tier",
    "accounts.deactivate_user",
    "accounts.reset_rate_limits",
    "documents.release_document",
)
ROLES = {
    "security-viewer": VIEWER_PERMISSIONS,
    "security-operator": OPERATOR_PERMISSIONS,
}
