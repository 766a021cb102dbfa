"""Verification of the audit log: every chain from its start (or pruning anchor) to its last signed checkpoint."""

import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from audit.chain import GENESIS, AuditKeyRing, checkpoint_mac, entry_mac, erasure_mac, key_candidates
from audit.models import AuditCheckpoint, AuditEntry
from audit.sanitize import legacy_personal_digest, personal_digest

ENTRY_FIELDS = [field.attname for field in AuditEntry._meta.concrete_fields]


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with one chain."""

    kind: str  # altered, inserted, missing, truncated, forged_checkpoint
    chain_id: str
    seq: int
    entry_id: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Checkpoint:
    chain_id: str
    seq: int
    entry_mac: str
    kind: str
    created_at: datetime
    mac: str
    source: str
    key_id: str = ""

    def valid(self, key: bytes | AuditKeyRing) -> bool:
        """Whether the signature verifies under the key it names (under any key of the ring, for a checkpoint that names none)."""
        return any(
            checkpoint_mac(
                chain_id=self.chain_id, seq=self.seq, entry_mac_value=self.entry_mac, kind=self.kind, created_at=self.created_at,
                key=candidate,
            ) == self.mac
            for candidate in key_candidates(key, self.key_id)
        )


@dataclass
class Report:
    entries: int
    chains: int
    problems: list[Problem]

    @property
    def intact(self) -> bool:
        return not self.problems


def _stream_checkpoints(paths: Iterable[Path]) -> Iterator[Checkpoint]:
    for path in paths:
        try:
            handle = open(path, encoding="utf-8", errors="replace")
        except OSError:
            continue
        with handle:
            for line in handle:
                if '"checkpoint"' not in line:
                    continue
                try:
                    document = json.loads(line)
                    if document.get("type") != "checkpoint":
                        continue
                    yield Checkpoint(
                        document["chain_id"], int(document["seq"]), document["entry_mac"], document["kind"],
                        datetime.fromisoformat(document["created_at"]), document["mac"], str(path),
                        str(document.get("key_id", "")),
                    )
                except (ValueError, KeyError, TypeError):
                    continue


def _stored_checkpoint(row: AuditCheckpoint) -> Checkpoint:
    return Checkpoint(row.chain_id, row.seq, row.entry_mac, row.kind, row.created_at, row.mac, "database", row.key_id)


def _checkpoints(stream_paths: Iterable[Path]) -> dict[str, list[Checkpoint]]:
    by_chain: dict[str, list[Checkpoint]] = {}
    for row in AuditCheckpoint.objects.all().iterator():
        by_chain.setdefault(row.chain_id, []).append(_stored_checkpoint(row))
    for checkpoint in _stream_checkpoints(stream_paths):
        by_chain.setdefault(checkpoint.chain_id, []).append(checkpoint)
    return by_chain


def _entry_fields(entry: AuditEntry) -> dict:
    return {name: getattr(entry, name) for name in ENTRY_FIELDS}


def _personal_intact(entry: AuditEntry, key: bytes | AuditKeyRing) -> bool:
    """Each personal field matches its digest, or is empty under a genuine (signed) erasure.

    Digests and erasure marks may come from any key of the ring (an erasure signs with the key active at its time).
    """
    keys = key_candidates(key, None)
    erased = entry.personal_erased_at is not None
    if erased and not any(
        hmac.compare_digest(
            entry.personal_erasure_mac or "", erasure_mac(entry_id=str(entry.id), erased_at=entry.personal_erased_at, key=candidate)
        )
        for candidate in keys
    ):
        return False
    salt = entry.personal_salt
    for value, digest in (
        (entry.username, entry.username_digest),
        (entry.client_ip or "", entry.client_ip_digest),
        (entry.user_agent, entry.user_agent_digest),
    ):
        if erased and value == "":
            continue
        # The stored digest is MAC-covered: a changed value would have to hit it under either scheme.
        if legacy_personal_digest(salt, value) != digest and all(personal_digest(salt, value, k) != digest for k in keys):
            return False
    return True


def _forged(
    chain_id: str, checkpoints: list[Checkpoint], key: bytes | AuditKeyRing
) -> tuple[list[Checkpoint], Problem | None]:
    """(the checkpoints whose signature verifies, the problem of the first one whose signature does not)."""
    valid, invalid = [], []
    for point in checkpoints:
        (valid if point.valid(key) else invalid).append(point)
    if not invalid:
        return valid, None
    forged = invalid[0]
    return valid, Problem("forged_checkpoint", chain_id, forged.seq, "",
                          f"chain {chain_id}: a {forged.kind} at seq {forged.seq} ({forged.source}) has an invalid signature")


def _verify_chain(
    chain_id: str, entries: Iterator[AuditEntry], checkpoints: list[Checkpoint], key: bytes | AuditKeyRing
) -> tuple[int, Problem | None]:
    """Verify a chain against checkpoints whose signatures are already known to be valid."""
    anchors = [point for point in checkpoints if point.kind == "anchor"]
    anchor = max(anchors, key=lambda point: point.seq, default=None)
    expected_seq = anchor.seq + 1 if anchor else 1
    expected_prev = anchor.entry_mac if anchor else GENESIS
    macs: dict[int, str] = {}
    count = 0
    pending: AuditEntry | None = None
    for entry in entries:
        if anchor and entry.seq <= anchor.seq:
            continue
        if pending is not None:
            problem = _check_entry(chain_id, pending, expected_seq, expected_prev, key, following=entry)
            if problem:
                return count, problem
            macs[pending.seq] = pending.mac
            expected_seq, expected_prev = pending.seq + 1, pending.mac
            count += 1
        pending = entry
    if pending is not None:
        problem = _check_entry(chain_id, pending, expected_seq, expected_prev, key, following=None)
        if problem:
            return count, problem
        macs[pending.seq] = pending.mac
        expected_seq = pending.seq + 1
        count += 1
    last_seq = expected_seq - 1
    for point in sorted(checkpoints, key=lambda item: item.seq):
        if point.kind != "checkpoint" or (anchor and point.seq <= anchor.seq):
            continue
        if point.seq > last_seq:
            return count, Problem("truncated", chain_id, last_seq + 1, "",
                                  f"chain {chain_id}: entries {last_seq + 1}..{point.seq} are missing (a signed checkpoint "
                                  f"says the chain reached seq {point.seq}; it ends at {last_seq})")
        if macs.get(point.seq) != point.entry_mac:
            return count, Problem("altered", chain_id, point.seq, "",
                                  f"chain {chain_id}: the entry at seq {point.seq} differs from its signed checkpoint")
    return count, None


def _check_entry(
    chain_id: str, entry: AuditEntry, expected_seq: int, expected_prev: str, key: bytes | AuditKeyRing, *,
    following: AuditEntry | None,
) -> Problem | None:
    where = f"entry {entry.id} (chain {chain_id}, seq {entry.seq})"
    fields = _entry_fields(entry)
    authentic = any(entry_mac(fields, candidate) == entry.mac for candidate in key_candidates(key, entry.key_id))
    if not authentic:
        # If the chain carries on as though this row did not exist, it was inserted.
        skipped = following is not None and following.prev_mac == expected_prev and entry.seq == expected_seq
        kind = "inserted" if skipped else "altered"
        return Problem(kind, chain_id, entry.seq, str(entry.id), f"{where} was {kind}: its MAC does not verify")
    if entry.seq != expected_seq or entry.prev_mac != expected_prev:
        return Problem("missing", chain_id, expected_seq, str(entry.id),
                       f"chain {chain_id}: entry seq {expected_seq} is missing (deleted) before {where}")
    if not _personal_intact(entry, key):
        return Problem("altered", chain_id, entry.seq, str(entry.id), f"{where} was altered: a personal field does not match its digest")
    return None


def audit_log_verify(*, key: bytes | AuditKeyRing, stream_paths: Iterable[Path] = ()) -> Report:
    """Verify every chain; the report names the first problem of each broken chain (and a forged checkpoint beside it)."""
    checkpoints = _checkpoints(stream_paths)
    chain_ids = set(AuditEntry.objects.values_list("chain_id", flat=True).distinct()) | set(checkpoints)
    problems: list[Problem] = []
    total = 0
    for chain_id in sorted(chain_ids):
        # A forged checkpoint is reported, and the chain is still verified against the genuine ones: a junk row must
        # not take the place of the finding it was planted to hide (an entry deleted before it, say).
        valid, forged = _forged(chain_id, checkpoints.get(chain_id, []), key)
        entries = AuditEntry.objects.filter(chain_id=chain_id).order_by("seq").iterator(chunk_size=2000)
        count, problem = _verify_chain(chain_id, entries, valid, key)
        total += count
        problems.extend(found for found in (problem, forged) if found is not None)
    return Report(entries=total, chains=len(chain_ids), problems=problems)


def chain_prefix_problem(chain_id: str, last_seq: int, *, key: bytes | AuditKeyRing) -> Problem | None:
    """The first problem of a chain's entries up to `last_seq` (against its stored checkpoints up to there), or None.

    Also checks that what follows links to the last of them, so an anchor placed there continues the chain.
    """
    stored = [_stored_checkpoint(row) for row in AuditCheckpoint.objects.filter(chain_id=chain_id, seq__lte=last_seq)]
    checkpoints, forged = _forged(chain_id, stored, key)
    if forged is not None:
        return forged
    entries = AuditEntry.objects.filter(chain_id=chain_id, seq__lte=last_seq).order_by("seq").iterator(chunk_size=2000)
    _, problem = _verify_chain(chain_id, entries, checkpoints, key)
    if problem is not None:
        return problem
    last = AuditEntry.objects.filter(chain_id=chain_id, seq__lte=last_seq).order_by("-seq").only("seq", "mac").first()
    if last is None or last.seq != last_seq:
        return Problem("missing", chain_id, last_seq, "", f"chain {chain_id}: entry seq {last_seq} is missing")
    following = AuditEntry.objects.filter(chain_id=chain_id, seq__gt=last_seq).order_by("seq").only("id", "seq", "prev_mac").first()
    if following is not None and (following.seq != last_seq + 1 or following.prev_mac != last.mac):
        return Problem("missing", chain_id, last_seq + 1, str(following.id),
                       f"chain {chain_id}: entry seq {last_seq + 1} is missing or does not link to seq {last_seq}")
    return None
