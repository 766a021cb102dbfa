"""Group commit for audit entries: concurrent requests of one process share one INSERT and one durable COMMIT.

No background thread: the first request thread to arrive becomes the leader,
writes everything queued (its own entry and those that arrived meanwhile) in
one transaction, and hands the result to each waiting thread. A lone request
(a sync worker) simply writes its own entry. Every entry is durable (committed,
or fsynced to the spool) before its request's response leaves.
"""

import threading
from dataclasses import dataclass, field
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
            with transaction.atomic():
                _insert([item.sealed for item in batch])
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


def _insert(entries: list[dict[str, Any]]) -> None:
    """One multi-row INSERT through the model's own field conversions (the ORM's per-object machinery costs more than
    the write itself on the request path)."""
    from audit.models import AuditEntry

    fields = [field for field in AuditEntry._meta.concrete_fields if field.attname in entries[0]]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [field.get_db_prep_save(entry[field.attname], connection) for entry in entries for field in fields]
    # Only the model's own quoted identifiers are formatted in; every value is a bound parameter.
    sql = f"INSERT INTO {quote(AuditEntry._meta.db_table)} ({columns}) VALUES {', '.join([row] * len(entries))}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


committer = GroupCommitter()
