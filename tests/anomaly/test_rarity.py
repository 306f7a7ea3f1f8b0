"""Rarity over realistic Windows (4624, Sysmon 1) and sshd events: silent while learning, then first-seen
logon sources, first-seen process/parent pairs and logons at unusual hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.anomaly.detectors.rarity import RarityDetector
from collector.anomaly.engine import AnomalyEngine
from collector.anomaly.settings import AnomalySettings
from collector.anomaly.state import AnomalyState
from collector.store.sqlite import SqliteEventStore
from soc_common.ecs import Event

from .conftest import ZONE_NAMES, ListSink, collector_config, ingest
from .synth import ssh_login, sysmon_process, windows_logon

MONDAY = datetime(2024, 3, 4, tzinfo=UTC)  # offices work 08-17 local (UTC+7) = 01-10 UTC
WORK_HOURS_UTC = range(1, 11)
EXPLORER = "C:\\Windows\\explorer.exe"
CHROME = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"
SERVICES = "C:\\Windows\\System32\\services.exe"
SVCHOST = "C:\\Windows\\System32\\svchost.exe"


def office_week(days: int) -> list[Event]:
    """Every work hour: lan logs on from her PC, admin SSHs from the jump host, pc1 runs its usual programs."""
    out: list[Event] = []
    for day in range(days):
        for hour in WORK_HOURS_UTC:
            t = MONDAY + timedelta(days=day, hours=hour)
            out.append(windows_logon(t + timedelta(minutes=5), "lan", "10.10.1.5"))
            out.append(ssh_login(t + timedelta(minutes=20), "admin", "10.10.1.7"))
            out.append(sysmon_process(t + timedelta(minutes=30), "pc1.hn.local", EXPLORER, CHROME))
            out.append(sysmon_process(t + timedelta(minutes=31), "pc1.hn.local", SERVICES, SVCHOST))
    return out


def test_rarity_learns_silently_then_flags_first_seen_and_odd_hours(
    sqlite_store: SqliteEventStore, tmp_path: Path
) -> None:
    learning_oddities = [  # new for their entity, but the entity is still being learned: no alert
        windows_logon(MONDAY + timedelta(hours=5, minutes=40), "lan", "10.10.9.9"),
        sysmon_process(MONDAY + timedelta(hours=5, minutes=41), "pc1.hn.local", EXPLORER, "C:\\Windows\\notepad.exe"),
        ssh_login(MONDAY + timedelta(hours=6, minutes=1), "admin", "10.10.4.4"),
    ]
    friday = MONDAY + timedelta(days=4)
    attack = [
        windows_logon(friday + timedelta(hours=3, minutes=10), "lan", "10.10.66.6"),  # 10:10 local: usual hour
        ssh_login(friday + timedelta(hours=4, minutes=15), "admin", "10.10.8.8"),
        sysmon_process(
            friday + timedelta(hours=5, minutes=20),
            "pc1.hn.local",
            "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
            "C:\\Windows\\System32\\cmd.exe",
        ),
        windows_logon(friday + timedelta(hours=19, minutes=30), "lan", "10.10.1.5"),  # 02:30 local, known source
    ]
    ingest(sqlite_store, collector_config(tmp_path), office_week(5) + learning_oddities + attack)
    sink = ListSink()
    settings = AnomalySettings.model_validate({"initial_lookback": 6 * 86400, "rarity": {"learning_days": 2}})
    state = AnomalyState(tmp_path / "anomaly.db")
    engine = AnomalyEngine(settings, sqlite_store, state, sink, ZONE_NAMES, [RarityDetector()])

    report = engine.run_once(MONDAY + timedelta(days=1, hours=12))
    assert report.errors == {} and report.windows["rarity"] > 0
    assert sink.alerts == []  # everything is first-seen, but nothing is mature yet
    assert state.seen_count("rarity") >= 6  # it learned the pairs and sources it saw

    report = engine.run_once(MONDAY + timedelta(days=5, hours=1))
    assert report.errors == {}
    got = sorted((a.rule_id.split(".")[-1], a.user_name or a.host_name, a.source_ip) for a in sink.alerts)
    assert got == [
        ("first_seen_logon_source", "admin", "10.10.8.8"),
        ("first_seen_logon_source", "lan", "10.10.66.6"),
        ("first_seen_process", "pc1.hn.local", None),
        ("unusual_hour_logon", "lan", None),
    ]
    process = next(a for a in sink.alerts if a.rule_id.endswith("first_seen_process"))
    assert process.explanation["observed"] == "WINWORD.EXE -> cmd.exe"
    assert process.explanation["baseline"]["known_pairs"] == 3
    odd = next(a for a in sink.alerts if a.rule_id.endswith("unusual_hour_logon"))
    assert odd.explanation["observed"]["local_hour"] == 2
    assert odd.explanation["baseline"]["logons_this_hour_and_neighbours"] == 0
    assert all(a.event_ids for a in sink.alerts)  # evidence points at the events behind each alert
    state.close()
