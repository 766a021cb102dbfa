"""The JSON-lines audit stream: every entry and checkpoint, one JSON object per line, for shipping to a SIEM."""

import logging
from pathlib import Path

from ragsecure.conf import ragsecure_settings


def stream_path() -> Path:
    """The local stream file (the `file` handler's target)."""
    return Path(ragsecure_settings.AUDIT_DIR) / "audit.jsonl"


class AuditStreamHandler(logging.Handler):
    """Appends each record's message (already one JSON object) as a line of the stream file; flushed per line."""

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        self._path = path
        self._handle = None
        self._handle_path: Path | None = None

    def emit(self, record: logging.LogRecord) -> None:
        path = Path(self._path) if self._path else stream_path()
        try:
            if self._handle is None or self._handle_path != path:
                self.close_handle()
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across records
                self._handle_path = path
            self._handle.write(record.getMessage() + "\n")
            self._handle.flush()
        except OSError:
            self.handleError(record)

    def close_handle(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def close(self) -> None:
        self.close_handle()
        super().close()
