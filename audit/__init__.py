"""Audit entries for every request and state-changing command."""
