"""The audit context: how views, services, authenticators, throttles and screens add to the current entry.

A request has one context (set by AuditMiddleware); a management command opens
one with `command_audit`. Code that changes state calls `audit_note`; outside
any context (a shell), the note is written as an entry of its own.
"""

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_current: contextvars.ContextVar["AuditContext | None"] = contextvars.ContextVar("ragsecure_audit", default=None)


@dataclass
class AuditContext:
    """What the request's (or command's) one entry will say beyond what the middleware sees."""

    action: str = ""
    action_explicit: bool = False
    outcome: str | None = None
    scopes: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    actor: Any = None
    actor_kind: str = ""
    claimed_username: str = ""

    def set_action(self, action: str, *, explicit: bool = True) -> None:
        """Name the entry: the first explicit action (the outermost service call) wins over the view's default."""
        if explicit:
            if not self.action_explicit:
                self.action, self.action_explicit = action, True
        elif not self.action_explicit:
            self.action = action

    def as_detail(self) -> dict[str, Any]:
        detail = dict(self.detail)
        if self.events:
            detail["events"] = self.events
        return detail


def current_audit() -> AuditContext | None:
    """The active context, or None outside requests and commands."""
    return _current.get()


@contextmanager
def audit_scope(context: AuditContext) -> Iterator[AuditContext]:
    """Make `context` current for the duration of the block."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def audit_note(action: str, **detail: Any) -> None:
    """Record a state change (an event with its targets and reason) on the current entry."""
    context = current_audit()
    if context is None:
        from audit.services import audit_entry_write_for_event

        audit_entry_write_for_event(action=action, detail=detail)
        return
    context.set_action(action)
    context.events.append({"action": action, **detail})


def audit_verdict(name: str, value: Any) -> None:
    """Attach a security verdict (throttle decision, screening result, auth failure, ...) to the current entry."""
    context = current_audit()
    if context is not None:
        context.detail[name] = value


def audit_outcome(outcome: str) -> None:
    """Override the outcome derived from the status (e.g. `blocked` for a screened prompt)."""
    context = current_audit()
    if context is not None:
        context.outcome = outcome


def audit_actor(user: Any, *, auth_kind: str) -> None:
    """Name who the request acts for when no token says so (a password login, a refresh token's subject)."""
    context = current_audit()
    if context is not None:
        context.actor, context.actor_kind = user, auth_kind


def audit_claimed_username(username: str) -> None:
    """The username a failed login claimed (kept as a personal field, never as an identity)."""
    context = current_audit()
    if context is not None:
        context.claimed_username = username


def audit_scopes(scopes: list[str] | tuple[str, ...]) -> None:
    """The scopes the request exercised."""
    context = current_audit()
    if context is not None:
        context.scopes = sorted(scopes)


@contextmanager
def command_audit(name: str, actor: Any = None) -> Iterator[AuditContext]:
    """Give a state-changing management command one audit entry, written when the block ends (also on failure)."""
    from audit.services import audit_entry_write_for_command

    context = AuditContext(action=f"command.{name}", action_explicit=True, actor=actor)
    outcome = "allowed"
    with audit_scope(context):
        try:
            yield context
        except BaseException:
            outcome = "error"
            raise
        finally:
            audit_entry_write_for_command(context=context, name=name, outcome=context.outcome or outcome)
