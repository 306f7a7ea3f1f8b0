"""DatabaseAlertSink: insert, dedup within the window while open, suppression, idempotence."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.models import AlertAlias, AlertRow, AlertTechnique, Suppression
from soc_api.db.session import make_engine, make_session_factory
from soc_api.services.alert_sink import DatabaseAlertSink
from soc_common.alert import AlertSink
from tests.helpers.alerts import T0, make_alert


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_is_an_alert_sink_and_stores_every_field(session_factory: sessionmaker[Session]) -> None:
    sink: AlertSink = DatabaseAlertSink(session_factory)
    alert = make_alert(1, techniques=["T1110", "T1110.001"], explanation={"count": 12}, drill=True)
    sink.emit([alert])
    with session_factory() as s:
        row = s.get(AlertRow, alert.id)
        techniques = sorted(s.scalars(select(AlertTechnique.technique).where(AlertTechnique.alert_id == alert.id)))
    assert row is not None
    assert (row.rule_id, row.severity, row.severity_rank, row.status) == ("rule-bruteforce", "high", 3, "new")
    assert row.timestamp == alert.timestamp and row.timestamp.tzinfo is not None
    assert row.events == alert.events and row.explanation == {"count": 12} and row.drill is True
    assert (row.host_name, row.site, row.zone, row.system_id) == ("pc-1", "hn", "party-wan", "sys-1")
    assert techniques == ["T1110", "T1110.001"]


def test_replay_is_idempotent(session_factory: sessionmaker[Session]) -> None:
    sink = DatabaseAlertSink(session_factory)
    batch = [make_alert(i) for i in range(5)]
    sink.emit(batch)
    sink.emit(batch)
    assert _count(session_factory, AlertRow) == 5
    assert (sink.stats.inserted, sink.stats.replayed) == (5, 5)


def test_duplicates_fold_into_the_open_alert_within_the_window(
    session_factory: sessionmaker[Session],
) -> None:
    sink = DatabaseAlertSink(session_factory, dedup_window=timedelta(hours=1))
    first = make_alert(0, group_key="host=pc-0")
    later = [
        make_alert(0, group_key="host=pc-0", first_event=f"e{i}", timestamp=T0 + timedelta(minutes=10 * i))
        for i in range(1, 4)
    ]
    sink.emit([first])
    sink.emit(later)
    sink.emit(later)  # replay of folded alerts must not count again
    with session_factory() as s:
        rows = list(s.scalars(select(AlertRow)))
    assert len(rows) == 1
    assert rows[0].duplicate_count == 3
    assert rows[0].last_seen == T0 + timedelta(minutes=30)
    assert rows[0].event_ids == ["evt-0", "e1", "e2", "e3"]
    assert _count(session_factory, AlertAlias) == 3
    assert (sink.stats.deduplicated, sink.stats.replayed) == (3, 3)


def test_no_dedup_outside_window_or_after_close(session_factory: sessionmaker[Session]) -> None:
    sink = DatabaseAlertSink(session_factory, dedup_window=timedelta(hours=1))
    sink.emit([make_alert(0, group_key="g")])
    sink.emit([make_alert(0, group_key="g", first_event="late", timestamp=T0 + timedelta(hours=2))])
    assert _count(session_factory, AlertRow) == 2
    with session_factory.begin() as s:
        for row in s.scalars(select(AlertRow)):
            row.status = "closed"
    sink.emit([make_alert(0, group_key="g", first_event="after-close", timestamp=T0 + timedelta(hours=2, minutes=1))])
    assert _count(session_factory, AlertRow) == 3
    # a different group key is a different alert even inside the window
    sink.emit([make_alert(0, group_key="other", first_event="x")])
    assert _count(session_factory, AlertRow) == 4


def test_active_suppressions_skip_and_count(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        s.add_all(
            [
                Suppression(
                    rule_id="rule-bruteforce", conditions={"host_name": ["pc-1", "pc-2"]}, reason="scanner",
                    created_by="alice",
                ),
                Suppression(
                    rule_id=None, conditions={"source.ip": "10.9.9.9"}, reason="pentest", created_by="bob"
                ),
                Suppression(
                    rule_id="rule-bruteforce", conditions={}, reason="old", created_by="bob",
                    expires_at=T0 - timedelta(days=1),
                ),
            ]
        )  # fmt: skip
    sink = DatabaseAlertSink(session_factory, clock=lambda: T0)
    pentest_event = [{"event": {"id": "p"}, "source": {"ip": "10.9.9.9"}}]
    sink.emit(
        [
            make_alert(1),
            make_alert(2),
            make_alert(3),
            make_alert(4, rule_id="other-rule", events=pentest_event),
        ]
    )
    with session_factory() as s:
        stored = sorted(s.scalars(select(AlertRow.host_name)))
        hits = {r.reason: r.hit_count for r in s.scalars(select(Suppression))}
    assert stored == ["pc-3"]
    assert sink.stats.suppressed == 3
    assert hits == {"scanner": 2, "pentest": 1, "old": 0}


def test_bad_alert_in_batch_does_not_lose_others(session_factory: sessionmaker[Session]) -> None:
    """A concurrent writer storing the same id first makes the batch retry alert by alert."""
    other = DatabaseAlertSink(session_factory)
    sink = DatabaseAlertSink(session_factory)
    shared = make_alert(7)
    other.emit([shared])
    # Simulate the race: the second sink's pre-check misses the stored id.
    sink._store = _racing_store(sink)  # type: ignore[method-assign]
    sink.emit([make_alert(8), shared, make_alert(9)])
    assert _count(session_factory, AlertRow) == 3
    assert sink.stats.conflicts == 1


def _racing_store(sink: DatabaseAlertSink):  # type: ignore[no-untyped-def]
    original = DatabaseAlertSink._store
    calls = {"n": 0}

    def store(session: Session, alerts: list) -> None:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 1:  # first (batch) attempt: insert blindly, as a racing writer would see it
            from soc_api.services.alert_sink import alert_to_row

            for a in alerts:
                session.add(alert_to_row(a))
            session.flush()
            return
        original(sink, session, alerts)

    return store


def test_from_url_migrates_and_stores(db_url: str) -> None:
    sink = DatabaseAlertSink.from_url(db_url)
    try:
        sink.emit([make_alert(1)])
        sink.emit([])
    finally:
        sink.close()
    engine = make_engine(db_url)
    try:
        assert _count(make_session_factory(engine), AlertRow) == 1
    finally:
        engine.dispose()
