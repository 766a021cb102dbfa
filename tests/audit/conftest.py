"""Audit tests: each test writes its stream, spool and checkpoints to a private directory."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection


@pytest.fixture(autouse=True)
def private_audit_dir(settings, tmp_path):
    """A private AUDIT_DIR (the root conftest already starts each test with a fresh chain writer)."""
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": str(tmp_path / "audit")}


@contextmanager
def table_gone(table: str) -> Iterator[None]:
    """The database refuses every statement on `table` (it is renamed away) for the duration of the block."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_off RENAME TO {table}")


def entries_table_gone():
    """The database refuses audit entries for the duration of the block."""
    return table_gone("audit_auditentry")


@pytest.fixture
def spool_unwritable(settings, tmp_path):
    """The audit directory lies under a regular file, so the spool cannot be created."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.RAGSECURE = {**settings.RAGSECURE, "AUDIT_DIR": str(blocker / "audit")}
