"""Group commit for audit entries: concurrent requests of one process share one INSERT and one durable COMMIT.

No background thread: the first request thread to arrive becomes the leader,
writes everything queued (its own entry and those that arrived meanwhile) in
one transaction, and hands the result to each waiting thread. A lone request
(a sync worker) simply writes its own entry. Every entry is durable (committed,
or fsynced to the spool) before its request's response leaves.
"""

import functools
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection, transaction

from audit.spool import AuditUnavailable, spool_append


@dataclass
class _Pending:
    sealed: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    error: AuditUnavailable | None = None
    spooled: bool = False


class GroupCommitter:
    """Writes sealed entries in batches; write() returns only once its entry is durable."""

    def __init__(self, max_batch: int = 256) -> None:
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leading = False

    def write(self, sealed: dict[str, Any]) -> bool:
        """Make `sealed` durable; True if it went to the database, False if to the spool; raise AuditUnavailable if neither."""
        item = _Pending(sealed)
        if connection.in_atomic_block:
            # Inside a caller's transaction: never take other threads' entries into
            # a transaction that might roll back.
            self._flush([item])
            return self._result(item)
        with self._lock:
            self._queue.append(item)
            lead = not self._leading
            if lead:
                self._leading = True
        if lead:
            self._lead()
        item.done.wait()
        return self._result(item)

    @staticmethod
    def _result(item: _Pending) -> bool:
        if item.error is not None:
            raise item.error
        return not item.spooled

    def _lead(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                if not batch:
                    self._leading = False
                    return
            self._flush(batch)

    def _flush(self, batch: list[_Pending]) -> None:
        try:
            if connection.in_atomic_block:
                # A savepoint, so a failed insert leaves the caller's transaction usable.
                with transaction.atomic():
                    insert_entries([item.sealed for item in batch])
            else:
                # One multi-row INSERT in autocommit mode is atomic by itself and durable when it returns:
                # no BEGIN and COMMIT round trips.
                insert_entries([item.sealed for item in batch])
        except DatabaseError:
            for item in batch:
                try:
                    spool_append(item.sealed)
                    item.spooled = True
                except AuditUnavailable as exc:
                    item.error = exc
        except BaseException as exc:  # noqa: BLE001 - a waiter must never hang on an unexpected error
            for item in batch:
                item.error = AuditUnavailable(f"audit write failed ({type(exc).__name__})")
        finally:
            for item in batch:
                item.done.set()


# Field types whose database value is the Python value itself (str, int, float, None) on every backend.
_PLAIN_TYPES = frozenset(
    {"CharField", "TextField", "IntegerField", "BigIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField",
     "SmallIntegerField", "FloatField"}
)


@functools.cache
def sealed_fields() -> tuple:
    """The model fields a sealed entry fills (every one but the erasure's, set only when personal data is erased)."""
    from audit.models import AuditEntry

    return tuple(field for field in AuditEntry._meta.concrete_fields if field.attname not in ERASURE_FIELDS)


ERASURE_FIELDS = frozenset({"personal_erased_at", "personal_erasure_mac"})


def entry_from_document(document: Any) -> dict[str, Any]:
    """A sealed entry read back from JSON (a spool line, a line sent to the host writer), typed as when it was sealed.

    Raises ValueError (or TypeError / AttributeError for values of the wrong type) for anything else.
    """
    if not isinstance(document, dict) or not all(field.attname in document for field in sealed_fields()):
        raise ValueError("not an audit entry")
    values = {field.attname: document[field.attname] for field in sealed_fields()}
    values["id"] = uuid.UUID(str(values["id"]))
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    return values


def insert_entries(entries: list[dict[str, Any]], *, ignore_existing: bool = False) -> None:
    """One multi-row INSERT through the model's own field conversions where a type needs one (the ORM's per-object
    machinery costs more than the write itself on the request path). `ignore_existing` skips entries whose id is
    already stored (an entry written twice after a lost reply)."""
    from audit.models import AuditEntry

    fields = [field for field in AuditEntry._meta.concrete_fields if field.attname in entries[0]]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    converters = [
        None if field.get_internal_type() in _PLAIN_TYPES else field.get_db_prep_save for field in fields
    ]
    # An entry spooled before a field existed (key_id) takes the field's default.
    defaults = [field.get_default() for field in fields]
    params = [
        entry.get(field.attname, default) if convert is None else convert(entry.get(field.attname, default), connection)
        for entry in entries
        for field, convert, default in zip(fields, converters, defaults, strict=True)
    ]
    # Only the model's own quoted identifiers are formatted in; every value is a bound parameter.
    sql = f"INSERT INTO {quote(AuditEntry._meta.db_table)} ({columns}) VALUES {', '.join([row] * len(entries))}"  # noqa: S608
    if ignore_existing:
        sql += " ON CONFLICT (id) DO NOTHING"
    with server_cursor() as cursor:
        cursor.execute(sql, params)


def server_cursor():
    """A cursor for the insert. On PostgreSQL, one that binds on the server: Django's default psycopg cursor quotes
    every value into the statement in Python (and re-parses the statement each time), which cost more than the
    insert itself. Wrapped like any Django cursor, so errors map to DatabaseError and execute wrappers still run."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg
    from django.db.backends.utils import CursorWrapper

    connection.ensure_connection()
    return CursorWrapper(psycopg.Cursor(connection.connection), connection)


committer = GroupCommitter()
