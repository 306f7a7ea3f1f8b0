"""Windows, checkpoints, late events, failures and paging of the scheduled path (against an ES API)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from collector.detection.scheduled.convert import compile_rules
from collector.detection.scheduled.runner import ScheduledDetector
from collector.detection.scheduled.settings import ScheduledSettings
from collector.detection.scheduled.state import StateStore
from collector.store.elastic import ElasticEventStore

from .helpers import T0, Clock, ListSink, auth_event, write_rule

USER_CREATED = "selection:\n    event.action: user_created\ncondition: selection\n"


def _detector(
    store: ElasticEventStore, rules_dir: Path, state_file: Path, sink: ListSink, clock: Clock, **settings: object
) -> ScheduledDetector:
    conf = ScheduledSettings(ingest_delay=60, interval=300, initial_lookback=3600, **settings)  # type: ignore[arg-type]
    return ScheduledDetector(store, compile_rules([rules_dir]), StateStore(state_file), sink, conf, clock=clock)


def _write(store: ElasticEventStore, *events: dict[str, object]) -> None:
    result = store.write(list(events))
    assert not result.errors and result.stored == len(events)
    store.refresh()


def test_window_is_half_open_on_ingest_time_and_respects_the_delay(
    es_store: ElasticEventStore, tmp_path: Path, state_file: Path, sink: ListSink
) -> None:
    write_rule(tmp_path / "rules", USER_CREATED)
    clock = Clock(T0)
    boundary = T0 - timedelta(seconds=60)  # window end = now - ingest_delay
    inside = auth_event("user_created", ts=T0, ingested=boundary)
    too_fresh = auth_event("user_created", ts=T0, ingested=T0)  # within the ingest delay: next run
    _write(es_store, inside, too_fresh)
    detector = _detector(es_store, tmp_path / "rules", state_file, sink, clock)
    [report] = detector.run_once()
    assert report.ok and report.hits == 1 and report.alerts == 1
    assert sink.alerts[0].event_ids == [inside["event"]["id"]]
    assert report.window_end == boundary
    clock.advance(300)
    [second] = detector.run_once()
    assert second.window_start == boundary
    assert [a.event_ids for a in sink.alerts[1:]] == [[too_fresh["event"]["id"]]]


def test_restart_resumes_from_the_checkpoint_without_gap_or_duplicate(
    es_store: ElasticEventStore, tmp_path: Path, state_file: Path, sink: ListSink
) -> None:
    write_rule(tmp_path / "rules", USER_CREATED)
    clock = Clock(T0 + timedelta(hours=1))
    first = [auth_event("user_created", ts=T0, ingested=T0.replace(minute=i)) for i in range(0, 50, 10)]
    _write(es_store, *first)
    detector = _detector(es_store, tmp_path / "rules", state_file, sink, clock)
    assert [r.alerts for r in detector.run_once()] == [5]
    detector.state.close()  # "stop"

    clock.advance(1800)  # down for half an hour, meanwhile more events arrive, some with old @timestamp
    later = [auth_event("user_created", ts=T0.replace(hour=1), ingested=clock.now.replace(minute=m)) for m in (1, 2)]
    _write(es_store, *later)
    restarted = _detector(es_store, tmp_path / "rules", state_file, sink, clock)  # same state file
    [report] = restarted.run_once()
    assert report.window_start == T0.replace(minute=59)  # the previous window end: no gap
    assert report.alerts == 2
    ids = sink.ids()
    assert len(ids) == len(set(ids)) == 7  # no duplicate
    assert {e for a in sink.alerts for e in a.event_ids} == {e["event"]["id"] for e in first + later}
    # Running again at the same time is a no-op (empty window), and a rerun of a window gives the same ids.
    assert restarted.run_once(only_due=False) == []


def test_late_event_with_old_timestamp_is_caught_by_the_next_run(
    es_store: ElasticEventStore, tmp_path: Path, state_file: Path, sink: ListSink
) -> None:
    write_rule(tmp_path / "rules", USER_CREATED)
    clock = Clock(T0)
    detector = _detector(es_store, tmp_path / "rules", state_file, sink, clock)
    assert [r.hits for r in detector.run_once()] == [0]
    clock.advance(300)
    # Happened two days ago (agent offline), ingested just now.
    late = auth_event("user_created", ts=T0.replace(day=1) - timedelta(days=2), ingested=T0)
    _write(es_store, late)
    [report] = detector.run_once()
    assert report.alerts == 1 and sink.alerts[0].event_ids == [late["event"]["id"]]
    assert sink.alerts[0].timestamp < T0.replace(day=1)  # the alert carries the event time


def test_a_failing_rule_is_reported_and_does_not_stop_the_others(
    es_store: ElasticEventStore, tmp_path: Path, state_file: Path, sink: ListSink
) -> None:
    good = write_rule(tmp_path / "rules", USER_CREATED)
    bad = write_rule(tmp_path / "rules", "selection:\n    event.action: sudo\ncondition: selection\n")
    clock = Clock(T0)
    _write(es_store, auth_event("user_created", ts=T0, ingested=T0.replace(minute=1) - timedelta(hours=1)))
    detector = _detector(es_store, tmp_path / "rules", state_file, sink, clock)
    # Break one rule the way a bad conversion or a cluster-side error would: an unparseable query.
    detector.rules.queries = [
        q if q.meta.id != bad else type(q)(q.meta, "event.action:(((", q.emit, q.interval_seconds)
        for q in detector.rules.queries
    ]
    reports = {r.rule_id: r for r in detector.run_once()}
    assert reports[good].ok and reports[good].alerts == 1
    assert not reports[bad].ok and reports[bad].error
    assert detector.state.checkpoint(good) == reports[good].window_end
    assert detector.state.checkpoint(bad) is None  # not advanced: the window is retried
    [failed] = detector.state.runs(bad, errors_only=True)
    assert failed.error == reports[bad].error


def test_paging_reads_every_hit_and_counts_overflow_over_the_cap(
    es_store: ElasticEventStore, tmp_path: Path, state_file: Path, sink: ListSink
) -> None:
    write_rule(tmp_path / "rules", USER_CREATED)
    clock = Clock(T0 + timedelta(hours=1))
    events = [auth_event("user_created", ts=T0, ingested=T0.replace(minute=5, second=i % 50)) for i in range(23)]
    _write(es_store, *events)
    capped = _detector(es_store, tmp_path / "rules", state_file, sink, clock, page_size=4, max_hits_per_run=10)
    [report] = capped.run_once()
    assert (report.hits, report.alerts, report.overflow) == (23, 10, 13)
    paged = _detector(es_store, tmp_path / "rules", tmp_path / "other.db", ListSink(), clock, page_size=4)
    [full] = paged.run_once()
    assert (full.hits, full.alerts, full.overflow) == (23, 23, 0)
    assert len({a.id for a in paged.sink.alerts}) == 23  # type: ignore[attr-defined]
