"""Anomaly detection: one full detector cycle over a day of flows from 1,000 hosts, and detection quality.

    .venv/bin/python bench/bench_anomaly.py [--hosts 1000] [--flows-per-hour 40] [--db PATH] [--reuse]

Part 1 loads one day of enriched flows (office PCs browsing the Internet and using the data centre,
party-WAN PCs using only the data centre, a port scan, a host sweep, a beacon and a bulk upload
hidden in it) into the embedded SQLite store, then times a first-start cycle (every detector,
baselines learning from the whole day) and a steady-state cycle (the next hour), with the time per
detector, wall and CPU time (this process: SQLite runs in it), and the peak RSS. ``--reuse`` with
``--db`` skips loading when that store already holds events (to iterate on detector speed).
Part 2 replays the seven scenario captures through the test harness and prints alerts raised
against those expected, and false alerts on the benign office day.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from collector.anomaly.engine import AnomalyEngine  # noqa: E402
from collector.anomaly.settings import AnomalySettings  # noqa: E402
from collector.anomaly.state import AnomalyState  # noqa: E402
from collector.store.sqlite import SqliteEventStore  # noqa: E402
from soc_common.alert import Alert  # noqa: E402
from soc_common.ecs import Event, iso  # noqa: E402

DAY0 = datetime(2024, 3, 4, tzinfo=UTC)
ZONES = ["datacenter", "party-wan", "office", "internet"]
INTERNET = [f"203.0.113.{i}" for i in range(1, 60)] + [f"198.51.100.{i}" for i in range(1, 40)]
DATACENTER = ["10.0.0.20", "10.0.0.53", "10.0.0.80", "10.0.0.25", "10.0.0.123"]


class CountingSink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def emit(self, alerts: Any) -> None:
        self.alerts.extend(alerts)


def zone_of(ip: str) -> str:
    if ip.startswith("10.0.0."):
        return "datacenter"
    if ip.startswith("10.10."):
        return "party-wan"
    if ip.startswith("192.168."):
        return "office"
    return "internet"


def flow(n: int, ts: datetime, src: str, dst: str, dport: int, sent: int, transport: str = "tcp") -> Event:
    """A flow as the agent's meter reports it after the collector's enrichment (site, zones)."""
    return {
        "@timestamp": iso(ts),
        "event": {
            "id": f"bench-{n}",
            "kind": "event",
            "dataset": "network_traffic.flow",
            "category": ["network"],
            "start": iso(ts),
            "reason": "closed",
        },
        "source": {"ip": src, "port": 40000 + n % 25000, "bytes": sent, "packets": 4 + sent // 1400},
        "destination": {"ip": dst, "port": dport, "bytes": 1500, "packets": 4},
        "network": {"transport": transport, "bytes": sent + 1500},
        "soc": {"site": "hn", "source_zone": zone_of(src), "destination_zone": zone_of(dst)},
        "related": {"ip": [src, dst]},
    }


def day_of_flows(hosts: int, per_hour: int, seed: int = 7) -> Any:
    """Yields batches; hosts are 60% office PCs, 40% party-WAN PCs; attacks planted in the afternoon."""
    rnd = random.Random(seed)
    office = [f"192.168.{1 + i // 250}.{10 + i % 250}" for i in range(hosts * 6 // 10)]
    wan = [f"10.10.{1 + i // 250}.{10 + i % 250}" for i in range(hosts - len(office))]
    n = 0
    for hour in range(24):
        batch: list[Event] = []
        t = DAY0 + timedelta(hours=hour)
        busy = 1.0 if 1 <= hour <= 10 else 0.15  # office hours 08-17 local (UTC+7)
        for src in office + wan:
            for _ in range(max(1, int(rnd.expovariate(1 / (per_hour * busy))))):
                n += 1
                at = t + timedelta(seconds=rnd.randrange(3600))
                kind = rnd.random()
                if kind < 0.3:
                    batch.append(flow(n, at, src, "10.0.0.53", 53, 80, "udp"))
                elif kind < 0.6 or src.startswith("10.10."):
                    batch.append(
                        flow(n, at, src, rnd.choice(DATACENTER), rnd.choice([445, 443, 25]), rnd.randrange(500, 90_000))
                    )
                else:
                    batch.append(flow(n, at, src, rnd.choice(INTERNET), 443, rnd.randrange(800, 400_000)))
        if hour == 14:  # a port scan, a host sweep and a bulk upload
            scanner = wan[3]
            batch += [
                flow(n + p, t + timedelta(minutes=5, milliseconds=p), scanner, "10.0.0.10", p, 60)
                for p in range(1, 1025)
            ]
            n += 1100
            batch += [
                flow(n + i, t + timedelta(minutes=25, seconds=i), office[7], f"10.0.0.{i}", 445, 60)
                for i in range(1, 255)
            ]
            n += 300
            batch.append(flow(n, t + timedelta(minutes=40), office[11], "198.51.100.20", 443, 600 * 1024 * 1024))
            n += 1
        for k in range(60):  # a beacon every 60 s (+/- 3 s) during this hour
            n += 1
            batch.append(
                flow(n, t + timedelta(seconds=60 * k + rnd.uniform(-3, 3)), office[21], "203.0.113.66", 443, 900)
            )
        yield batch


def load(store: SqliteEventStore, hosts: int, per_hour: int) -> tuple[int, float]:
    started, total = time.perf_counter(), 0
    for batch in day_of_flows(hosts, per_hour):
        for i in range(0, len(batch), 5000):
            total += store.write(batch[i : i + 5000]).stored
    return total, time.perf_counter() - started


def cpu_seconds() -> float:
    """User + system CPU of this process and its children (SQLite runs in-process)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cycle(
    store: SqliteEventStore, state: AnomalyState, now: datetime
) -> tuple[float, float, dict[str, float], dict[str, int], list[Alert]]:
    sink = CountingSink()
    engine = AnomalyEngine(AnomalySettings(initial_lookback=86400, initial_recent=86400), store, state, sink, ZONES)
    started, cpu = time.perf_counter(), cpu_seconds()
    report = engine.run_once(now)
    if report.errors:
        raise SystemExit(f"detector errors: {report.errors}")
    return time.perf_counter() - started, cpu_seconds() - cpu, report.duration_ms, report.windows, sink.alerts


def quality() -> list[tuple[str, int, int, list[str], list[str]]]:
    from anomaly.conftest import collector_config, ingest, make_engine, replay, sqlite_history_file
    from anomaly.test_scenarios import NOW, SCENARIOS

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        template = sqlite_history_file(Path(tmp) / "history.db")
        for name in SCENARIOS:
            work = Path(tmp) / name
            work.mkdir()
            (work / "events.db").write_bytes(template.read_bytes())
            store = SqliteEventStore(work / "events.db")
            ingest(store, collector_config(work), replay(name))
            sink = CountingSink()
            make_engine(store, work, sink, initial_lookback=5 * 86400).run_once(NOW)
            store.close()
            expected = json.loads((REPO / "pcaps" / f"{name}.anomaly.json").read_text())["rule_ids"]
            got = sorted({a.rule_id for a in sink.alerts})
            rows.append((name, len(set(got) & set(expected)), len(expected), sorted(set(got) - set(expected)), got))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--flows-per-hour", type=int, default=100, help="mean per host in office hours")
    parser.add_argument("--db", type=Path, help="keep the store here (default: a temporary directory)")
    parser.add_argument("--reuse", action="store_true", help="with --db: do not load when the store has events")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    db = args.db or Path(tmp.name) / "events.db"
    store = SqliteEventStore(db, retention_days=3650)
    held = int(store.health().get("count", 0)) if args.reuse and args.db else 0
    flows, load_s = (held, 0.0) if held else load(store, args.hosts, args.flows_per_hour)
    state = AnomalyState(Path(tmp.name) / "anomaly.db")
    # First start judges hours 0-22 (23 windows of 1 h, 138 of 10 min); the next cycle the last hour.
    first_s, first_cpu, first_ms, first_windows, first_alerts = cycle(
        store, state, DAY0 + timedelta(hours=23, minutes=15)
    )
    next_s, next_cpu, next_ms, _, next_alerts = cycle(store, state, DAY0 + timedelta(days=1, minutes=15))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mib = db.stat().st_size / 2**20
    loaded = f"loaded in {load_s:.1f} s ({flows / load_s:,.0f}/s)" if load_s else "reused"
    print(f"\nstore: {flows:,} flows, {args.hosts} hosts, {loaded}, {size_mib:.0f} MiB")
    print(f"\n{'detector':12} {'first start (23 h)':>20} {'windows':>8} {'next hour':>12}")
    for name in first_ms:
        print(f"{name:12} {first_ms[name] / 1000:>18.2f} s {first_windows[name]:>8} {next_ms[name] / 1000:>10.2f} s")
    print(f"{'total':12} {first_s:>18.2f} s {'':>8} {next_s:>10.2f} s")
    print(f"{'CPU':12} {first_cpu:>18.2f} s {'':>8} {next_cpu:>10.2f} s")
    print(f"peak RSS: {rss_mb:.0f} MiB")
    print(
        "alerts on the planted day: "
        + ", ".join(
            sorted({f"{a.rule_id} {a.source_ip or a.host_name or ''}".strip() for a in first_alerts + next_alerts})
        )
    )
    if not args.skip_quality:
        print(f"\n{'scenario':18} {'raised/expected':>16}  unexpected")
        for name, hit, expected, extra, _ in quality():
            print(f"{name:18} {hit:>7}/{expected:<8}  {', '.join(extra) or '-'}")
    store.close()
    state.close()


if __name__ == "__main__":
    main()
