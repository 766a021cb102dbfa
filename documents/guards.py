"""The screen applied to requests: verdicts to statuses, verdicts to the audit entry, blocked queries refused."""

import logging

from audit.context import audit_outcome, audit_verdict
from documents import screening
from documents.models import ScreeningStatus
from documents.screening import Verdict
from ragsecure.errors import PromptInjectionDetected

logger = logging.getLogger("ragsecure.screening")


def screen_or_block(text: str, kind: str) -> Verdict:
    """The screen's verdict; if the screen itself fails, a blocking one (fail closed: a quarantined document can be
    released by an operator, a refused query retried) and the failure logged."""
    try:
        return screening.screen(text, kind)
    except Exception:
        logger.exception("prompt screen failed on a %s of %d characters; treated as blocked", kind, len(text))
        return Verdict(blocked=True, flagged=False, score=1.0, reasons=("screen_error",))


def verdict_status(verdict: Verdict) -> str:
    """The document status a verdict gives: quarantined when blocked, flagged when flagged, else clean."""
    if verdict.blocked:
        return ScreeningStatus.QUARANTINED
    return ScreeningStatus.FLAGGED if verdict.flagged else ScreeningStatus.CLEAN


def verdict_record(*, kind: str, verdict: Verdict, text: str) -> None:
    """Put the verdict on the current audit entry; the text (masked and truncated by the audit) only when it was caught."""
    record: dict = {"kind": kind, "blocked": verdict.blocked, "flagged": verdict.flagged, "score": verdict.score,
                    "reasons": list(verdict.reasons)}
    if verdict.blocked or verdict.flagged:
        record["text"] = text
    audit_verdict("screening", record)


def query_guard(query: str) -> Verdict:
    """Screen a user's query; raise PromptInjectionDetected (a generic 400, reasons kept for the audit) when it is blocked."""
    verdict = screen_or_block(query, "query")
    verdict_record(kind="query", verdict=verdict, text=query)
    if verdict.blocked:
        audit_outcome("blocked")
        raise PromptInjectionDetected()
    return verdict
