"""Audit tests: each test writes its stream, spool and checkpoints to a private directory."""

import pytest


@pytest.fixture(autouse=True)
def private_audit_dir(settings, tmp_path):
    """A private AUDIT_DIR (the root conftest already starts each test with a fresh chain writer)."""
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": str(tmp_path / "audit")}
