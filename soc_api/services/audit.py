"""The audit trail: append-only, hash-chained.

Each entry's ``hash`` is sha256 over a canonical JSON of the entry (every column but ``hash``,
including ``prev_hash``), so changing, removing or reordering any row breaks the chain from that
row on, and :func:`verify` names the first bad ``seq``.

Appends are serialised so two writers can never fork the chain: PostgreSQL takes a
transaction-scoped advisory lock before reading the last entry; SQLite allows one writer at a time
and ``seq`` is the primary key, so a racing second writer fails instead of forking.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from soc_api.db.models import AuditEntry
from soc_common.ecs import iso, utc_now

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_KEY = 0x50C_A0D1  # arbitrary, constant: "the audit chain"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(_jsonable(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: AuditEntry) -> str:
    ts = entry.ts if entry.ts.tzinfo else entry.ts.replace(tzinfo=UTC)
    fields = {
        "seq": entry.seq,
        "ts": ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": entry.actor,
        "source_ip": entry.source_ip,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "prev_hash": entry.prev_hash,
    }
    return hashlib.sha256(canonical(fields)).hexdigest()


def _lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> AuditEntry:
    """Add an entry in the caller's transaction (so the change and its record commit together)."""
    _lock_chain(session)
    last = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    # Microsecond precision survives both databases unchanged, so the hash is reproducible.
    entry = AuditEntry(
        seq=seq,
        ts=utc_now(),
        actor=actor,
        source_ip=source_ip,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        prev_hash=prev,
    )
    entry.hash = entry_hash(entry)
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


def _iter_entries(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    after = 0
    while True:
        rows = list(
            session.scalars(select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch))
        )
        if not rows:
            return
        yield from rows
        after = rows[-1].seq
        session.expunge_all()


def verify(session: Session) -> VerifyResult:
    """Walk the chain from the start; report the first entry that is missing, altered or misplaced."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for entry in _iter_entries(session):
        if entry.seq != expected_seq:
            return VerifyResult(False, checked, expected_seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != prev_hash:
            return VerifyResult(False, checked, entry.seq, "prev_hash does not match the previous entry")
        if entry_hash(entry) != entry.hash:
            return VerifyResult(False, checked, entry.seq, "content does not match its hash")
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked)
