"""Users, tiers, scopes, JWTs, revocation and staff roles."""
