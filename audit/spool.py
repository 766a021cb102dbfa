"""The append-only spool: entries that could not reach the database, as fsynced JSON lines, replayed later."""

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragsecure.conf import ragsecure_settings


class AuditUnavailable(Exception):
    """An entry could be written neither to the database nor to the spool."""


def spool_path() -> Path:
    return Path(ragsecure_settings.AUDIT_DIR) / "spool.jsonl"


def _encode(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="microseconds")
    return str(value) if hasattr(value, "hex") and not isinstance(value, (str, bytes, int, float)) else value


def _ends_with_newline(path: Path) -> bool:
    """True for an empty file or one whose last byte is a newline."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


@contextmanager
def _locked(path: Path, mode: str) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | (os.O_APPEND if mode == "a" else 0), 0o600)
    with os.fdopen(fd, "r+" if mode != "a" else "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def spool_append(sealed: dict[str, Any]) -> None:
    """Append one sealed entry durably (fsync) to the spool; raise AuditUnavailable when that fails."""
    line = json.dumps({key: _encode(value) for key, value in sealed.items()}, ensure_ascii=True, separators=(",", ":"))
    try:
        with _locked(spool_path(), "a") as handle:
            # A line torn by a crash must not swallow this one.
            if not _ends_with_newline(spool_path()):
                handle.write("\n")
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise AuditUnavailable(f"audit spool unwritable: {exc.strerror}") from None


def spool_pending() -> int:
    """How many entries wait in the spool (non-blank lines, read under its lock); 0 when there is no spool."""
    path = spool_path()
    if not path.exists():
        return 0
    with _locked(path, "r") as handle:
        return sum(1 for raw in handle if raw.strip())


@contextmanager
def spool_drain() -> Iterator[tuple[list[dict[str, Any]], list[str]]]:
    """Yield (entries, unreadable lines) from the spool under its lock; the spool is emptied if the block succeeds."""
    path = spool_path()
    if not path.exists():
        yield [], []
        return
    with _locked(path, "r") as handle:
        entries, rejected = [], []
        for raw in handle.read().splitlines():
            if not raw.strip():
                continue
            try:
                entries.append(json.loads(raw))
            except ValueError:
                rejected.append(raw)
        yield entries, rejected
        handle.seek(0)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())
