"""The HMAC chain: what an entry's MAC covers, per-writer chain state, and signed checkpoints.

Each writer process keeps its own chain (`chain_id`, `seq` from 1), so writers
never contend for a global lock. An entry's MAC covers its content and the MAC
of the previous entry of its chain; a checkpoint's MAC covers (chain, seq, entry
MAC). Without the `audit-hmac-key` nobody can produce a MAC that verifies, so
recomputing plain hashes after an edit does not help an attacker.
"""

import hashlib
import hmac
import json
import os
import secrets
import socket
import threading
import time
from datetime import datetime
from typing import Any

from ragsecure.conf import ragsecure_settings
from ragsecure.secrets import SecretsError, get_secret

GENESIS = "0" * 64
MAC_VERSION = "ragsecure-audit-v1"
# Fields whose values the MAC covers, in this order. Personal data enters through digests only.
COVERED_FIELDS = (
    "id", "created_at", "chain_id", "seq", "prev_mac", "request_id", "client_request_id", "actor_id", "auth_kind",
    "token_jti", "scopes", "method", "path", "query_string", "status", "duration_ms", "action", "outcome", "detail",
    "personal_salt", "username_digest", "client_ip_digest", "user_agent_digest",
)


_JSON_NATIVE = frozenset({str, int, float, bool, type(None), list, dict})


def _canonical(value: Any) -> Any:
    """The JSON form of a value JSON has no type for (a time, a UUID); callers pass JSON-native values through."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if hasattr(value, "hex") and not isinstance(value, (bytes, str, int, float)):
        return str(value)  # UUID
    return value


class AuditKey(bytes):
    """An HMAC key that knows its id (entries and checkpoints record which key signed them)."""

    key_id: str

    def __new__(cls, value: bytes, key_id: str) -> "AuditKey":
        key = super().__new__(cls, value)
        key.key_id = key_id
        return key


def audit_key_id(value: bytes) -> str:
    """A key's id: a fingerprint that names the key without revealing it."""
    return "k" + hashlib.sha256(b"ragsecure-audit-key-id\x00" + value).hexdigest()[:15]


class AuditKeyRing:
    """Every audit key the `audit-hmac-key` secret holds: the active one signs, each verifies what it signed.

    The secret is one key (as before rotation existed) or `{"active": id, "keys": {id: key, ...}}`.
    """

    def __init__(self, keys: dict[str, bytes], active_id: str) -> None:
        self.keys = {key_id: AuditKey(value, key_id) for key_id, value in keys.items()}
        self.active = self.keys[active_id]

    @classmethod
    def parse(cls, raw: str) -> "AuditKeyRing":
        raw = raw.strip()
        if raw.startswith("{"):
            try:
                document = json.loads(raw)
                keys = {str(key_id): str(value).encode("utf-8") for key_id, value in document["keys"].items()}
                return cls(keys, str(document["active"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise SecretsError("the audit-hmac-key secret is not a valid key ring") from None
        value = raw.encode("utf-8")
        return cls({audit_key_id(value): value}, audit_key_id(value))

    def serialise(self) -> str:
        return json.dumps({"active": self.active.key_id, "keys": {key_id: key.decode("utf-8") for key_id, key in self.keys.items()}})

    def rotated(self, new_value: str) -> "AuditKeyRing":
        """The ring with `new_value` as the active key; every older key stays, to verify what it signed."""
        value = new_value.encode("utf-8")
        new_id = audit_key_id(value)
        return AuditKeyRing({**{key_id: bytes(key) for key_id, key in self.keys.items()}, new_id: value}, new_id)

    def candidates(self, key_id: str | None) -> list[AuditKey]:
        """The keys that may have signed a record carrying `key_id`: that one, or every key for a record written before
        records named their key."""
        if key_id:
            key = self.keys.get(key_id)
            return [key] if key is not None else []
        return list(self.keys.values())


def key_candidates(key: bytes, key_id: str | None) -> list[bytes]:
    """The keys to verify a record with: a ring's candidates, or the one key given."""
    return key.candidates(key_id) if isinstance(key, AuditKeyRing) else [key]


_ring_cache: tuple[str, AuditKeyRing] | None = None


def audit_key_ring() -> AuditKeyRing:
    """Every audit key, from the secrets provider (cached there for its TTL); parsed again only when the secret changes."""
    global _ring_cache
    raw = get_secret("audit-hmac-key")
    cached = _ring_cache
    if cached is not None and (cached[0] is raw or cached[0] == raw):
        return cached[1]
    ring = AuditKeyRing.parse(raw)
    _ring_cache = (raw, ring)
    return ring


def audit_key() -> AuditKey:
    """The active HMAC key (with its id), from the secrets provider."""
    return audit_key_ring().active


def entry_mac(fields: dict[str, Any], key: bytes) -> str:
    """The MAC of an entry: HMAC-SHA256 over the canonical JSON of its covered fields (prev_mac included)."""
    values = (fields[name] for name in COVERED_FIELDS)
    document = [MAC_VERSION] + [value if type(value) in _JSON_NATIVE else _canonical(value) for value in values]
    payload = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hmac.digest(key, payload.encode("ascii"), "sha256").hex()


def checkpoint_mac(*, chain_id: str, seq: int, entry_mac_value: str, kind: str, created_at: datetime, key: bytes) -> str:
    """The MAC of a checkpoint or pruning anchor."""
    payload = json.dumps([MAC_VERSION, "checkpoint", kind, chain_id, seq, entry_mac_value, _canonical(created_at)], separators=(",", ":"))
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()


def erasure_mac(*, entry_id: str, erased_at: datetime, key: bytes) -> str:
    """The MAC that makes an erasure of an entry's personal fields genuine (only the erasure service holds the key)."""
    payload = json.dumps([MAC_VERSION, "personal-erasure", str(entry_id), _canonical(erased_at)], separators=(",", ":"))
    return hmac.digest(key, payload.encode("ascii"), "sha256").hex()


class ChainWriter:
    """One process's chain: hands out sequence numbers and previous MACs, and says when a checkpoint is due."""

    def __init__(self, *, checkpoint_every: int | None = None, checkpoint_seconds: float | None = None) -> None:
        host = socket.gethostname().split(".")[0][:24] or "host"
        self.pid = os.getpid()
        self.chain_id = f"{host}-{self.pid}-{secrets.token_hex(4)}"
        self.seq = 0
        self.prev_mac = GENESIS
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.checkpointed_seq = 0
        self.checkpointed_at = time.monotonic()
        # Sealed entries not yet durable (seq -> the MAC before it): a checkpoint never signs past the first of them.
        self.in_flight: dict[int, str] = {}
        self.lock = threading.Lock()

    def seal(self, fields: dict[str, Any], key: bytes) -> dict[str, Any]:
        """Give `fields` this chain's next position and its MAC; returns the sealed fields (in flight until settled)."""
        with self.lock:
            self.seq += 1
            sealed = {
                **fields, "chain_id": self.chain_id, "seq": self.seq, "prev_mac": self.prev_mac, "key_id": getattr(key, "key_id", ""),
            }
            sealed["mac"] = entry_mac(sealed, key)
            self.prev_mac = sealed["mac"]
            self.in_flight[self.seq] = sealed["prev_mac"]
        return sealed

    def settle(self, seq: int) -> None:
        """The entry at `seq` is durable (stored or spooled): checkpoints may sign it."""
        with self.lock:
            self.in_flight.pop(seq, None)

    @property
    def unsigned(self) -> bool:
        """Whether entries were written after the last checkpoint."""
        return self.seq > self.checkpointed_seq

    def checkpoint_due(self, *, now: float | None = None) -> bool:
        """True when enough entries or time (monotonic seconds, `now` or the clock's) have passed since the last checkpoint."""
        if not self.unsigned:
            return False
        every = self.checkpoint_every or int(ragsecure_settings.AUDIT_CHECKPOINT_EVERY)
        seconds = self.checkpoint_seconds or float(ragsecure_settings.AUDIT_CHECKPOINT_SECONDS)
        elapsed = (time.monotonic() if now is None else now) - self.checkpointed_at
        return self.seq - self.checkpointed_seq >= every or elapsed >= seconds

    def position(self) -> tuple[int, str]:
        """(seq, MAC) of the last entry of this chain's durable prefix: another thread's entry still being written may
        yet fail, and a checkpoint past it would make its absence look like a truncated tail."""
        with self.lock:
            if not self.in_flight:
                return self.seq, self.prev_mac
            first = min(self.in_flight)
            return first - 1, self.in_flight[first]

    def mark_checkpointed(self, seq: int) -> None:
        self.checkpointed_seq = max(self.checkpointed_seq, seq)
        self.checkpointed_at = time.monotonic()


_writer: ChainWriter | None = None
_writer_lock = threading.Lock()


def chain_reset(writer: ChainWriter) -> None:
    """Retire `writer`: the next entry of this process starts a new chain."""
    global _writer
    with _writer_lock:
        if _writer is writer:
            _writer = None


def current_chain_writer() -> ChainWriter | None:
    """This process's chain writer if it has written anything; never starts one."""
    writer = _writer
    return writer if writer is not None and writer.pid == os.getpid() else None


def chain_writer() -> ChainWriter:
    """This process's chain writer (a forked child starts a chain of its own)."""
    global _writer
    if _writer is None or _writer.pid != os.getpid():
        with _writer_lock:
            if _writer is None or _writer.pid != os.getpid():
                _writer = ChainWriter()
    return _writer
