"""Score texts with the prompt screen: JSON lines in on stdin, one verdict line out per input, in order."""

import json
import sys
from typing import Any, BinaryIO, TextIO

from django.core.management.base import BaseCommand, CommandError

from documents.screening import screen

MAX_LINE_BYTES = 8 * 1024 * 1024
EXIT_MALFORMED = 2


def _verdict_line(raw: bytes, kind: str) -> tuple[dict[str, Any], bool]:
    """The output object for one input line, and whether the line was well formed."""
    if len(raw) > MAX_LINE_BYTES:
        return {"error": f"line longer than {MAX_LINE_BYTES} bytes"}, False
    try:
        item = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return {"error": "line is not UTF-8"}, False
    except (ValueError, RecursionError):
        return {"error": "line is not valid JSON"}, False
    if not isinstance(item, dict) or "text" not in item:
        return {"error": 'expected an object with a "text" field'}, False
    if not isinstance(item["text"], str):
        return {"error": '"text" must be a string'}, False
    verdict = screen(item["text"], kind)
    return {"blocked": verdict.blocked, "score": verdict.score, "reasons": list(verdict.reasons)}, True


def screen_lines(source: BinaryIO, sink: TextIO, *, kind: str) -> bool:
    """Screen every non-blank line of `source` into `sink`; whether every line was well formed."""
    all_good = True
    while True:
        raw = source.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return all_good
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            # Skip the rest of an over-long line so the next output still lines up with the next input.
            while (more := source.readline(MAX_LINE_BYTES)) and not more.endswith(b"\n"):
                pass
        elif not raw.strip():
            continue
        result, good = _verdict_line(raw.rstrip(b"\r\n"), kind)
        all_good &= good
        sink.write(json.dumps(result) + "\n")
        sink.flush()


class Command(BaseCommand):
    help = 'Read JSON lines {"text": ...} on stdin; write {"blocked", "score", "reasons"} per line (exit 2 if any line was malformed).'

    def add_arguments(self, parser) -> None:
        parser.add_argument("--kind", choices=("query", "document"), default="query")

    def handle(self, *args, kind: str, **options) -> None:
        if not screen_lines(sys.stdin.buffer, self.stdout, kind=kind):
            raise CommandError("some input lines were malformed (their output lines carry the error)", returncode=EXIT_MALFORMED)
