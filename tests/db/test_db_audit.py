"""The audit hash chain: appends link up, tampering is named by seq, writers never fork it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.models import AuditEntry
from soc_api.db.session import begin_write
from soc_api.services import audit


def _append(sessions: sessionmaker[Session], n: int, actor: str = "alice") -> None:
    for i in range(n):
        with sessions.begin() as s:
            begin_write(s)
            audit.append(
                s,
                actor=actor,
                action="alert.close",
                object_type="alert",
                object_id=f"a{i}",
                before={"status": "new"},
                after={"status": "closed", "note": "Đã xử lý"},
                source_ip="10.1.1.1",
            )


def _disable_guard(sessions: sessionmaker[Session]) -> None:
    """What an attacker with database owner rights would do first."""
    with sessions.begin() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            s.execute(text("DROP TRIGGER audit_log_no_update"))
            s.execute(text("DROP TRIGGER audit_log_no_delete"))


def test_chain_links_and_verifies(session_factory: sessionmaker[Session]) -> None:
    _append(session_factory, 5)
    with session_factory() as s:
        rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        result = audit.verify(s)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == audit.GENESIS_HASH
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, 5))
    assert result.ok and result.checked == 5 and result.first_bad_seq is None


def test_empty_chain_is_intact(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as s:
        assert audit.verify(s).ok


@pytest.mark.parametrize(
    ("statement", "bad_seq", "reason"),
    [
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", 3, "content"),
        ("UPDATE audit_log SET after = NULL WHERE seq = 2", 2, "content"),
        ("DELETE FROM audit_log WHERE seq = 4", 4, "missing"),
    ],
)
def test_tampering_is_named_by_seq(
    session_factory: sessionmaker[Session], statement: str, bad_seq: int, reason: str
) -> None:
    _append(session_factory, 6)
    _disable_guard(session_factory)
    with session_factory.begin() as s:
        s.execute(text(statement))
    with session_factory() as s:
        result = audit.verify(s)
    assert not result.ok
    assert result.first_bad_seq == bad_seq
    assert reason in result.reason


def test_recomputed_hash_still_breaks_the_next_link(session_factory: sessionmaker[Session]) -> None:
    """Re-hashing an altered row is not enough: the next row's prev_hash gives it away."""
    _append(session_factory, 4)
    _disable_guard(session_factory)
    with session_factory.begin() as s:
        row = s.get(AuditEntry, 2)
        assert row is not None
        row.actor = "mallory"
        row.hash = audit.entry_hash(row)
    with session_factory() as s:
        result = audit.verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_concurrent_writers_do_not_fork_the_chain(session_factory: sessionmaker[Session]) -> None:
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        for _ in range(15):
            try:
                _append(session_factory, 1, actor=name)
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with session_factory() as s:
        result = audit.verify(s)
        seqs = list(s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
    assert seqs == list(range(1, 61))
    assert result.ok and result.checked == 60
