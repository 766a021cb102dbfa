"""Export of audit entries as CSV (safe against spreadsheet formula injection) and JSON lines."""

import csv
import io
import json
from collections.abc import Iterable, Iterator

from audit.models import AuditEntry

EXPORT_FIELDS = (
    "id", "created_at", "request_id", "client_request_id", "actor_id", "username", "auth_kind", "token_jti", "scopes", "method",
    "path", "query_string", "status", "duration_ms", "client_ip", "user_agent", "action", "outcome", "detail", "chain_id", "seq", "mac",
)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")


def spreadsheet_safe(value: object) -> str:
    """A cell value that no spreadsheet evaluates: text starting like a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = str(value)
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def _row(entry: AuditEntry) -> dict:
    row = {name: getattr(entry, name) for name in EXPORT_FIELDS}
    row["id"] = str(entry.id)
    row["created_at"] = entry.created_at.isoformat()
    return row


def export_csv(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """CSV text, header first, chunk by chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for entry in entries:
        row = _row(entry)
        writer.writerow([spreadsheet_safe(row[name]) for name in EXPORT_FIELDS])
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_jsonl(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """One JSON object per entry per line (control characters escaped by JSON)."""
    for entry in entries:
        yield json.dumps(_row(entry), ensure_ascii=True, default=str) + "\n"
