"""Prompt-injection screening of queries and documents: screen(text, kind) -> Verdict."""

from dataclasses import dataclass

from documents.screening.engine import KINDS, score_text
from ragsecure.conf import ragsecure_settings

__all__ = ["KINDS", "Verdict", "score_text", "screen"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of screening one text. Reasons are stable machine codes for staff and audit, never for clients."""

    blocked: bool
    flagged: bool
    score: float
    reasons: tuple[str, ...]


def _thresholds(kind: str) -> tuple[float, float]:
    # Read at every call: tests and admins change RAGSECURE at run time.
    prefix = "SCREEN_QUERY" if kind == "query" else "SCREEN_DOCUMENT"
    return float(getattr(ragsecure_settings, f"{prefix}_BLOCK_SCORE")), float(getattr(ragsecure_settings, f"{prefix}_FLAG_SCORE"))


def screen(text: str, kind: str = "query") -> Verdict:
    """Screen `text` as a user query or an ingested document ("query" or "document"; anything else: ValueError)."""
    score, reasons = score_text(text, kind)
    block_at, flag_at = _thresholds(kind)
    blocked = score >= block_at
    return Verdict(blocked=blocked, flagged=not blocked and score >= flag_at, score=score, reasons=reasons)
