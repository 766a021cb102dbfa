"""Writing audit entries: seal into the chain, store in the database (or the spool), stream as JSON lines, checkpoint."""

import atexit
import functools
import ipaddress
import json
import logging
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from audit.chain import (
    ChainWriter,
    audit_key,
    audit_key_ring,
    chain_reset,
    chain_writer,
    checkpoint_mac,
    current_chain_writer,
    erasure_mac,
)
from audit.commit import committer, entry_from_document, insert_entries
from audit.context import AuditContext
from audit.flood import flood_kind_status, flood_kind_user, flood_restore, floods_due
from audit.models import AuditCheckpoint, AuditEntry
from audit.sanitize import clean, clean_detail, clean_query_string, personal_digest
from audit.spool import AuditUnavailable, spool_drain, spool_pending
from audit.writer import writer_client
from ragsecure.conf import ragsecure_settings
from ragsecure.secrets import SecretsError

logger = logging.getLogger("ragsecure.audit")
stream = logging.getLogger("ragsecure.audit.stream")


def time_ordered_uuid(random: bytes | None = None) -> uuid.UUID:
    """A version-7 UUID (48-bit Unix milliseconds, then 74 random bits): new entries land at the right edge of the
    primary-key index instead of on a random page, which keeps inserts cheap under load. `random`: 10 bytes from the
    operating system's generator, when the caller drew them together with others."""
    millis = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(random if random is not None and len(random) == 10 else os.urandom(10), "big")
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | (random_bits >> 62 & 0xFFF) << 64 | 0b10 << 62 | (random_bits & (2**62 - 1))
    return uuid.UUID(int=value)


def outcome_for_status(status: int) -> str:
    """The outcome a status implies when nothing more specific was recorded."""
    if status == 429:
        return "throttled"
    if status >= 500:
        return "error"
    if status >= 400:
        return "denied"
    return "allowed"


def audit_fields(
    *,
    action: str,
    outcome: str,
    auth_kind: str,
    request_id: str = "",
    client_request_id: str | None = None,
    actor_id: int | None = None,
    username: str = "",
    token_jti: str = "",
    scopes: list[str] | None = None,
    method: str = "",
    path: str = "",
    query_string: str = "",
    status: int | None = None,
    duration_ms: float = 0.0,
    client_ip: str | None = None,
    user_agent: str = "",
    detail: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The stored fields of an entry, every attacker-controlled value cleaned, personal fields digested.

    Raises AuditUnavailable when the audit key (which the digests need) is unavailable.
    """
    try:
        key = audit_key()
    except SecretsError as exc:
        raise AuditUnavailable(f"audit-hmac-key unavailable ({type(exc).__name__})") from None
    random = os.urandom(26)  # one system call: the entry id's random bits and the personal salt
    salt = random[10:].hex()
    username = clean(username, 150)
    user_agent = clean(user_agent, 512)
    client_ip = stored_ip(client_ip)
    return {
        "id": time_ordered_uuid(random[:10]),
        # UTC, as the database will hand it back: the MAC covers its text form.
        "created_at": created_at.astimezone(UTC) if created_at else datetime.now(UTC),
        # Server ids and validated client ids ([A-Za-z0-9._-]{1,64}) need no cleaning.
        "request_id": request_id[:64],
        "client_request_id": (client_request_id or "")[:64],
        "actor_id": actor_id,
        "username": username,
        "auth_kind": auth_kind,
        "token_jti": token_jti[:64],
        "scopes": [clean(scope, 64) for scope in (scopes or [])][:32],
        "method": clean(method, 16),
        "path": clean(path, 2048),
        "query_string": clean_query_string(query_string),
        "status": status,
        "duration_ms": round(float(duration_ms), 3),
        "client_ip": client_ip or None,
        "user_agent": user_agent,
        "action": clean(action, 64),
        "outcome": outcome,
        "detail": clean_detail(detail or {}, limit=int(ragsecure_settings.AUDIT_PROMPT_LIMIT)),
        "personal_salt": salt,
        "username_digest": personal_digest(salt, username, key),
        "client_ip_digest": personal_digest(salt, client_ip or "", key),
        "user_agent_digest": personal_digest(salt, user_agent, key),
    }


def stored_ip(value: str | None) -> str | None:
    """An IP address in the form the database stores (IPv4-mapped IPv6 unpacked, zone id dropped), or None."""
    if not value:
        return None
    return _stored_ip(value) if len(value) <= 64 else _parse_ip(value)


def _parse_ip(value: str) -> str | None:
    value = value.split("%", 1)[0]
    try:
        return clean_ipv6_address(value) if ":" in value else str(ipaddress.IPv4Address(value))
    except (ValidationError, ValueError):
        return None


_stored_ip = functools.lru_cache(maxsize=4096)(_parse_ip)


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)  # UUID


def stream_line(kind: str, document: dict[str, Any]) -> str:
    """One line of the JSON-lines stream (ASCII, no newline inside): the document with its type."""
    return json.dumps({"type": kind, **document}, default=_json_value, ensure_ascii=True, separators=(",", ":"))


def _stream(kind: str, document: dict[str, Any]) -> None:
    if stream.isEnabledFor(logging.INFO):
        stream.info(stream_line(kind, document))


def audit_entry_write(fields: dict[str, Any]) -> dict[str, Any]:
    """Seal and durably record one entry: the database, or the spool when the database fails.

    Raises AuditUnavailable when neither can take it (or the HMAC key is missing):
    the caller must then not report success.
    """
    try:
        key = audit_key()
    except SecretsError as exc:
        raise AuditUnavailable(f"audit-hmac-key unavailable ({type(exc).__name__})") from None
    # An entry inside a caller's transaction commits or rolls back with it, so it starts a chain of its own (one
    # entry), signed once the transaction commits. Rolled back, it leaves no gap in this process's chain (a gap is
    # what a deletion looks like); committed, its deletion is detected like any other.
    own_chain = _in_callers_transaction()
    writer = ChainWriter() if own_chain else chain_writer()
    checkpoint_timer.ensure_started()
    sealed = writer.seal(fields, key)
    try:
        # The host writer, when one runs, stores and streams the entry; otherwise (or inside a transaction) this
        # process does.
        line = stream_line("entry", sealed)
        durable_in_database = writer_client.write(line)
        if durable_in_database is None:
            durable_in_database = committer.write(sealed)
            if stream.isEnabledFor(logging.INFO):
                stream.info(line)
    except BaseException:
        # This entry's seq was used but never stored (neither place took it, or anything else interrupted the write):
        # continue in a fresh chain so the old one ends cleanly instead of showing a permanent gap, and no entry
        # stays in flight in a chain that goes on being written (its checkpoints would stop below it for good).
        chain_reset(writer)
        raise
    writer.settle(sealed["seq"])
    if not durable_in_database:
        logger.error("audit entry %s spooled: the database write failed", sealed["id"])
    if own_chain:
        transaction.on_commit(lambda: audit_checkpoint_write(writer=writer, key=key), robust=True)
    elif writer.checkpoint_due():
        audit_checkpoint_write(writer=writer, key=key)
        _floods_write_quietly()
    return sealed


def _in_callers_transaction() -> bool:
    """Whether this thread's database work runs inside a transaction its caller opened (a script running a command
    inside `atomic`, say). The transaction a test case wraps around each test does not count, as in Django's own
    check of durable blocks: it stands in for autocommit."""
    return connection.in_atomic_block and any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def _floods_write_quietly(*, now: float | None = None) -> None:
    """Flood summaries ride on a request or a timer tick that has its own work: their failure must not fail it."""
    try:
        audit_floods_write(now=now)
    except AuditUnavailable as exc:
        logger.error("flood summaries not written, kept in Redis for the next pass (%s)", exc)


def audit_floods_write(*, now: float | None = None) -> int:
    """Write the summary entries of flood minutes that have ended (one per IP, kind and minute, with the count).

    A minute that held one request has its full entry already and gets no summary. Returns the summaries written.
    """
    summaries = floods_due(now=now)
    written = 0
    for number, summary in enumerate(summaries):
        if summary["count"] <= 1:
            continue
        status, user_id = flood_kind_status(summary["kind"]), flood_kind_user(summary["kind"])
        try:
            audit_entry_write(
                audit_fields(
                    action="flood.summary", outcome=outcome_for_status(status), auth_kind="jwt" if user_id else "anonymous",
                    actor_id=user_id, client_ip=summary["ip"], status=status,
                    detail={"kind": summary["kind"], "minute": summary["minute"], "requests": summary["count"], "written_in_full": 1},
                )
            )
        except AuditUnavailable:
            # Taken from Redis but not recorded: hand this one and the rest back, so no count is lost.
            for untaken in summaries[number:]:
                if not flood_restore(untaken):
                    logger.critical(
                        "flood summary of %s (%s) for %s lost: %s requests", untaken["ip"], untaken["kind"], untaken["minute"],
                        untaken["count"],
                    )
            raise
        written += 1
    return written


def audit_checkpoint_write(*, writer: ChainWriter | None = None, key: bytes | None = None, kind: str = "checkpoint") -> dict | None:
    """Sign "this chain reached seq N with MAC M", store it and write it to the stream (the off-database copy)."""
    writer = writer or chain_writer()
    seq, last_mac = writer.position()
    if seq == 0:
        return None
    key = key or audit_key()
    created_at = timezone.now()
    document = {
        "chain_id": writer.chain_id,
        "seq": seq,
        "entry_mac": last_mac,
        "kind": kind,
        "created_at": created_at,
        "mac": checkpoint_mac(chain_id=writer.chain_id, seq=seq, entry_mac_value=last_mac, kind=kind, created_at=created_at, key=key),
        "key_id": getattr(key, "key_id", ""),
    }
    try:
        with transaction.atomic():
            AuditCheckpoint.objects.create(**document)
    except DatabaseError:
        logger.error("audit checkpoint of chain %s at %s kept in the stream only", writer.chain_id, seq)
    _stream("checkpoint", document)
    writer.mark_checkpointed(seq)
    return document


def audit_checkpoint_if_idle(*, now: float | None = None) -> dict | None:
    """Sign this process's chain when its newest entries have waited AUDIT_CHECKPOINT_SECONDS unsigned: a worker that
    goes quiet must not leave the tail of its chain unprovable until its next request."""
    writer = current_chain_writer()
    if writer is None or not writer.checkpoint_due(now=now):
        return None
    return audit_checkpoint_write(writer=writer)


def audit_idle_tick(*, now: float | None = None, wall_time: float | None = None) -> dict | None:
    """The timer's work: flood minutes that have ended (by `wall_time`, Unix seconds) become their summary entries (a
    process that only rejects a flood writes no other entry that would carry them), then an idle chain's tail is
    signed (`now`: monotonic seconds, as for audit_checkpoint_if_idle)."""
    _floods_write_quietly(now=wall_time)
    return audit_checkpoint_if_idle(now=now)


class CheckpointTimer:
    """A daemon thread per process that calls audit_checkpoint_if_idle every half AUDIT_CHECKPOINT_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self.stopped = threading.Event()

    def ensure_started(self) -> bool:
        """Start the thread in this process (once, and again in a forked child) when AUDIT_CHECKPOINT_TIMER is on."""
        if self._pid == os.getpid() or not ragsecure_settings.AUDIT_CHECKPOINT_TIMER:
            return False
        with self._lock:
            if self._pid == os.getpid():
                return False
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="audit-checkpoint", daemon=True).start()
            return True

    def _run(self) -> None:
        from django.db import connections

        while not self.stopped.wait(max(0.05, float(ragsecure_settings.AUDIT_CHECKPOINT_SECONDS) / 2)):
            try:
                audit_idle_tick()
            except Exception:  # noqa: BLE001 - the next tick tries again; requests keep their own checkpoints
                logger.exception("idle audit checkpoint failed")
            finally:
                connections.close_all()  # this thread's connections only


checkpoint_timer = CheckpointTimer()


def _final_checkpoint() -> None:
    """At process exit, sign how far this process's chain got (so deleting its last entries is detected)."""
    if not ragsecure_settings.AUDIT_CHECKPOINT_AT_EXIT:
        return
    try:
        writer = current_chain_writer()
        if writer is not None and writer.unsigned:
            audit_checkpoint_write(writer=writer)
    except Exception:  # noqa: BLE001 - never fail interpreter shutdown
        logger.exception("final audit checkpoint failed")


atexit.register(_final_checkpoint)


def audit_entry_write_for_command(*, context: AuditContext, name: str, outcome: str) -> None:
    """The one entry of a management command."""
    actor = context.actor
    audit_entry_write(
        audit_fields(
            action=context.action or f"command.{name}",
            outcome=outcome,
            auth_kind="command",
            actor_id=getattr(actor, "pk", None),
            username=getattr(actor, "username", "") or "",
            path=f"manage.py {name}",
            detail=context.as_detail(),
        )
    )


def audit_entry_write_for_event(*, action: str, detail: dict[str, Any]) -> None:
    """An entry for a state change made outside any request or command (a shell, a script)."""
    fields = audit_fields(
        action=action, outcome="allowed", auth_kind="command", path="(no request)", detail={"events": [{"action": action, **detail}]}
    )
    # Sealed only if the caller's change commits: a rolled-back change needs no entry, and uses no seq.
    transaction.on_commit(lambda: audit_entry_write(fields))


def audit_spool_replay() -> tuple[int, int]:
    """Load spooled entries into the database, idempotent by entry id. Returns (loaded, unreadable lines kept)."""
    with spool_drain() as (documents, rejected):
        entries: list[tuple[dict, Any]] = []
        for document in documents:
            try:
                entries.append((entry_from_document(document), document))
            except (ValueError, TypeError, AttributeError):
                rejected.append(json.dumps(document, default=str))
        existing = set(AuditEntry.objects.filter(id__in=[entry["id"] for entry, _ in entries]).values_list("id", flat=True))
        fresh = [(entry, document) for entry, document in entries if entry["id"] not in existing]
        loaded = 0
        for start in range(0, len(fresh), 500):
            batch = fresh[start : start + 500]
            if _replay_insert([entry for entry, _ in batch]):
                loaded += len(batch)
                continue
            for entry, document in batch:  # find the entries the database refuses; load the others
                if _replay_insert([entry]):
                    loaded += 1
                else:
                    # Another row holds its place in the chain (chain, seq), or a value does not fit: kept for staff.
                    logger.critical("spooled audit entry %s refused by the database; kept in the rejected file", entry["id"])
                    rejected.append(json.dumps(document, default=str))
        if rejected:
            _keep_rejected(rejected)
    return loaded, len(rejected)


def _replay_insert(entries: list[dict[str, Any]]) -> bool:
    """Insert entries in one statement, skipping ids already stored (and only those: a row planted at an entry's
    place in its chain is a conflict to report, not a duplicate to drop). False if the database refuses them."""
    try:
        with transaction.atomic():
            insert_entries(entries, ignore_existing=True)
    except (IntegrityError, DataError):
        return False
    return True


def _keep_rejected(lines: list[str]) -> None:
    from audit.spool import spool_path

    path = spool_path().with_suffix(".rejected.jsonl")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def audit_personal_erase(*, username: str = "", client_ip: str = "") -> int:
    """Blank the personal fields (username, IP address, user agent) of every entry naming a person, by username or
    by IP address. Each erased entry gets a signed erasure mark: the log stays verifiable, and a blanking without
    one is reported as an alteration. Returns the number of entries erased."""
    if not username and not client_ip:
        raise ValueError("name a username or an IP address")
    try:
        pending = spool_pending()
    except OSError as exc:
        raise ValueError(f"the spool cannot be read ({exc.strerror}), so entries waiting in it could escape the erasure") from None
    if pending:
        # Not in the database yet: replayed after this erasure, they would store the person's data again, unerased.
        raise ValueError(
            f"{pending} audit entr{'y waits' if pending == 1 else 'ies wait'} in the spool: run replay_audit_spool "
            "first, so that the erasure reaches every entry"
        )
    key = audit_key()
    who = Q()
    if username:
        who |= Q(username=clean(username, 150))
    if client_ip:
        address = stored_ip(client_ip)
        if address is None:
            raise ValueError("not an IP address")
        who |= Q(client_ip=address)
    ids = list(AuditEntry.objects.filter(who, personal_erased_at__isnull=True).order_by().values_list("id", flat=True))
    erased_at = timezone.now()
    for start in range(0, len(ids), 500):
        rows = [
            AuditEntry(
                id=entry_id, username="", client_ip=None, user_agent="", personal_erased_at=erased_at,
                personal_erasure_mac=erasure_mac(entry_id=str(entry_id), erased_at=erased_at, key=key),
            )
            for entry_id in ids[start : start + 500]
        ]
        with transaction.atomic():
            AuditEntry.objects.bulk_update(rows, ["username", "client_ip", "user_agent", "personal_erased_at", "personal_erasure_mac"])
    return len(ids)


def audit_prune(*, cutoff: datetime) -> tuple[int, int, list[str]]:
    """Delete entries created before `cutoff`; each affected chain gets a signed anchor at its last pruned entry.

    A chain is pruned only if the part to be deleted verifies: otherwise the anchor would vouch for whatever is
    there (the time that selects the old entries is a column an intruder can back-date) and deleting would erase
    the evidence. Returns (entries deleted, chains pruned, the problems of the chains left alone).
    """
    from audit.verify import chain_prefix_problem

    ring = audit_key_ring()
    key = ring.active
    deleted = chains = 0
    refused: list[str] = []
    old = AuditEntry.objects.filter(created_at__lt=cutoff)
    for chain_id in list(old.order_by().values_list("chain_id", flat=True).distinct()):
        last = old.filter(chain_id=chain_id).order_by("-seq").only("seq", "mac").first()
        problem = chain_prefix_problem(chain_id, last.seq, key=ring)
        if problem is not None:
            logger.critical("prune_audit left chain %s alone: %s", chain_id, problem)
            refused.append(str(problem))
            continue
        now = timezone.now()
        with transaction.atomic():
            AuditCheckpoint.objects.create(
                chain_id=chain_id, seq=last.seq, entry_mac=last.mac, kind="anchor", created_at=now, key_id=key.key_id,
                mac=checkpoint_mac(chain_id=chain_id, seq=last.seq, entry_mac_value=last.mac, kind="anchor", created_at=now, key=key),
            )
            count, _ = AuditEntry.objects.filter(chain_id=chain_id, seq__lte=last.seq).delete()
            AuditCheckpoint.objects.filter(chain_id=chain_id, seq__lte=last.seq, kind="checkpoint").delete()
            AuditCheckpoint.objects.filter(chain_id=chain_id, seq__lt=last.seq, kind="anchor").delete()
        deleted += count
        chains += 1
    return deleted, chains, refused
