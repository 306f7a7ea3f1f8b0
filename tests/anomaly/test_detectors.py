"""Volume silence and spike, exfiltration far above a learned baseline, NXDOMAIN bursts; and that the
batched catch-up (hot windows, range histograms) finds exactly what window-by-window judging finds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.anomaly.base import Detector, RunContext, Scope
from collector.anomaly.detectors import all_detectors
from collector.anomaly.detectors.dns import DnsDetector
from collector.anomaly.detectors.exfil import ExfilDetector
from collector.anomaly.detectors.fanout import FanoutDetector
from collector.anomaly.detectors.volume import VolumeDetector
from collector.anomaly.engine import AnomalyEngine
from collector.anomaly.netclass import ZonePlan
from collector.anomaly.settings import AnomalySettings
from collector.anomaly.state import AnomalyState, StateTx
from collector.store.sqlite import SqliteEventStore
from soc_common.alert import Alert
from soc_common.ecs import Event

from .conftest import ZONE_NAMES, ListSink, collector_config, flow, ingest
from .synth import dns_answer, simple

T0 = datetime(2024, 3, 4, tzinfo=UTC)
DAYS = 4


def run(store: SqliteEventStore, tmp_path: Path, detector: Detector, now: datetime, **settings: object) -> list[Alert]:
    sink = ListSink()
    state = AnomalyState(tmp_path / f"{detector.name}.db")
    cfg = AnomalySettings(initial_lookback=(DAYS + 1) * 86400, **settings)  # type: ignore[arg-type]
    report = AnomalyEngine(cfg, store, state, sink, ZONE_NAMES, [detector]).run_once(now)
    state.close()
    assert report.errors == {}
    return sink.alerts


def steady_log_source(hours: int, host: str = "srv-log", per_hour: int = 60) -> list[Event]:
    return [
        simple(T0 + timedelta(hours=h, seconds=i * 3600 // per_hour), "system.syslog", host, i)
        for h in range(hours)
        for i in range(per_hour)
    ]


def test_volume_flags_a_source_that_stops(sqlite_store: SqliteEventStore, tmp_path: Path) -> None:
    steady = steady_log_source(DAYS * 24, "srv-log") + steady_log_source(DAYS * 24 + 4, "srv-web", 30)
    ingest(sqlite_store, collector_config(tmp_path), steady)  # srv-log stops at day 4, srv-web goes on
    alerts = run(sqlite_store, tmp_path, VolumeDetector(), T0 + timedelta(days=DAYS, hours=4, minutes=15))
    silent = [(a.rule_id, a.explanation["entity"]) for a in alerts]
    assert ("anomaly.volume.host_silence", "srv-log") in silent
    assert all(entity != "srv-web" for _, entity in silent)
    host = next(a for a in alerts if a.rule_id == "anomaly.volume.host_silence")
    assert host.explanation["silent_hours"] == 2 and host.explanation["baseline"]["median"] == 60
    assert len([a for a in alerts if a.rule_id == "anomaly.volume.host_silence"]) == 1  # once per episode


def test_volume_flags_a_spike_not_normal_hours(sqlite_store: SqliteEventStore, tmp_path: Path) -> None:
    events = steady_log_source(DAYS * 24 + 3)
    burst_at = T0 + timedelta(days=DAYS, hours=2)
    events += [
        simple(burst_at + timedelta(seconds=i % 3600), "system.syslog", "srv-log", 10_000 + i) for i in range(3000)
    ]
    ingest(sqlite_store, collector_config(tmp_path), events)
    alerts = run(sqlite_store, tmp_path, VolumeDetector(), T0 + timedelta(days=DAYS, hours=3, minutes=15))
    spikes = {(a.rule_id, a.explanation["entity"], a.explanation["window"]["start"]) for a in alerts}
    assert spikes == {
        ("anomaly.volume.host_spike", "srv-log", "2024-03-08T02:00:00.000Z"),
        ("anomaly.volume.dataset_spike", "system.syslog", "2024-03-08T02:00:00.000Z"),
    }
    spike = next(a for a in alerts if a.rule_id == "anomaly.volume.host_spike")
    assert spike.explanation["observed"] == 3060 and spike.explanation["score"] >= 6


def test_exfil_upload_far_above_learned_baseline(sqlite_store: SqliteEventStore, tmp_path: Path) -> None:
    host, cloud = "10.10.3.8", "203.0.113.80"
    events = [
        flow(T0 + timedelta(hours=h, minutes=10), host, cloud, 443, 900_000 + (h * 7919) % 200_000, h)
        for h in range(DAYS * 24 + 3)
    ]
    upload_at = T0 + timedelta(days=DAYS, hours=1, minutes=30)
    events.append(flow(upload_at, host, cloud, 443, 300 * 1024 * 1024, 99_999, tag="upload"))
    ingest(sqlite_store, collector_config(tmp_path), events)
    alerts = run(sqlite_store, tmp_path, ExfilDetector(), T0 + timedelta(days=DAYS, hours=3, minutes=15))
    assert [(a.rule_id, a.source_ip, a.destination_ip) for a in alerts] == [("anomaly.exfil.upload_spike", host, cloud)]
    why = alerts[0].explanation
    assert why["first_seen_destination"] is False  # the destination is known: the volume is what is odd
    assert why["baseline"]["median"] < 1_200_000 and why["score"] > 100


def test_nxdomain_burst_from_one_client_only(sqlite_store: SqliteEventStore, tmp_path: Path) -> None:
    at = T0 + timedelta(hours=1)
    events = [
        dns_answer(at + timedelta(seconds=i * 20), "10.10.9.14", f"q{i:03d}x.example.net", "NXDOMAIN", i)
        for i in range(80)
    ]
    events += [
        dns_answer(at + timedelta(minutes=i), "10.10.1.10", "wpad.office.example.com", "NXDOMAIN", i) for i in range(3)
    ]
    events += [
        dns_answer(at + timedelta(minutes=i), "10.10.1.10", "www.example.com", "NOERROR", 100 + i) for i in range(40)
    ]
    ingest(sqlite_store, collector_config(tmp_path), events)
    alerts = run(sqlite_store, tmp_path, DnsDetector(), T0 + timedelta(hours=2, minutes=15))
    assert [(a.rule_id, a.source_ip) for a in alerts] == [("anomaly.dns.nxdomain_burst", "10.10.9.14")]
    assert alerts[0].explanation["observed"] == 80 and len(alerts[0].explanation["examples"]) == 5


def test_first_start_looks_back_briefly_for_threshold_detectors(sqlite_store: SqliteEventStore) -> None:
    now = datetime(2024, 3, 10, 12, 5, tzinfo=UTC)
    settings = AnomalySettings(initial_lookback=7 * 86400, initial_recent=3 * 3600, settle=600, max_catchup_windows=100)
    ctx = RunContext(sqlite_store, settings, None, ZonePlan(ZONE_NAMES, ["internet"]), now)  # type: ignore[arg-type]
    fanout = FanoutDetector().windows(ctx, settings.fanout, None)
    assert len(fanout) == 17 and fanout[-1][1] == datetime(2024, 3, 10, 11, 50, tzinfo=UTC)
    volume = VolumeDetector().windows(ctx, settings.volume, None)
    assert len(volume) == 100  # 7 days pending, bounded per cycle; the next cycle goes on from here
    assert volume[0][0] == datetime(2024, 3, 3, 12, 0, tzinfo=UTC)
    resumed = VolumeDetector().windows(ctx, settings.volume, volume[-1][1])
    assert resumed[0][0] == volume[-1][1] and len(resumed) == 67  # up to 11:00, the last closed hour


def test_batched_catch_up_equals_window_by_window(sqlite_store: SqliteEventStore, tmp_path: Path) -> None:
    """Every detector over a day of mixed traffic with a scan, a sweep and a DNS burst hidden in it:
    detect_range (pruned, batched) and plain per-window detect give the same findings and state."""
    events: list[Event] = []
    for h in range(24):
        for k in range(6):
            events.append(
                flow(T0 + timedelta(hours=h, minutes=7 * k), f"10.10.1.{10 + k}", "10.0.0.20", 445, 5000, h * 10 + k)
            )
    scan_at = T0 + timedelta(hours=9, minutes=12)
    events += [
        flow(scan_at + timedelta(milliseconds=p), "10.10.5.23", "10.0.0.10", p, 60, 10_000 + p, "scan")
        for p in range(1, 200)
    ]
    sweep_at = T0 + timedelta(hours=15, minutes=41)
    events += [flow(sweep_at, "10.10.5.24", f"10.0.0.{i}", 445, 60, 20_000 + i, "sweep") for i in range(1, 80)]
    events += [
        dns_answer(T0 + timedelta(hours=20, seconds=i), "10.10.9.14", f"n{i}.example.org", "NXDOMAIN", i)
        for i in range(60)
    ]
    ingest(sqlite_store, collector_config(tmp_path), events)
    settings = AnomalySettings()
    ctx = RunContext(
        sqlite_store,
        settings,
        AnomalyState(tmp_path / "s.db"),
        ZonePlan(ZONE_NAMES, ["internet"]),
        T0 + timedelta(days=1, hours=1),
    )
    for detector in all_detectors():
        params = settings.params(detector.name)
        step = detector.window_seconds(params)
        windows = [
            (T0 + timedelta(seconds=i * step), T0 + timedelta(seconds=(i + 1) * step))
            for i in range(int(86400 // step))
        ]
        scope = Scope(params)
        batched_tx, plain_tx = StateTx(detector.name), StateTx(detector.name)
        batched = detector.detect_range(ctx, scope, windows, batched_tx)
        plain = [f for s, e in windows for f in detector.detect(ctx, scope, s, e, plain_tx)]
        key = [(f.rule, sorted(f.group.items()), f.window_start) for f in batched]
        assert key == [(f.rule, sorted(f.group.items()), f.window_start) for f in plain], detector.name
        assert batched_tx.kv == plain_tx.kv and batched_tx.seen == plain_tx.seen, detector.name
        if detector.name == "fanout":
            assert {f.rule for f in batched} == {"port_scan", "host_sweep", "lateral_spread"}
        if detector.name == "dns":
            assert [f.rule for f in batched] == ["nxdomain_burst"]
