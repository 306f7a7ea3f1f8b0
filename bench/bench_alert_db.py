"""Triage filter latency of the SOC alert database at scale (SQLite and PostgreSQL).

    .venv/bin/python bench/bench_alert_db.py [--alerts 1000000] [--backends sqlite,postgresql] \
        [--pg-url postgresql://user@host/db]

Fills the alerts table (and alert_techniques) with a realistic spread (20 sites, 5,000 hosts,
300 rules, 150 techniques, 90 days, mostly closed), then times the queries the triage list runs
through ``soc_api.services.alerts.list_alerts``: median and p95 over repeated runs. Without
``--pg-url`` a throw-away PostgreSQL is started from Debian's binaries (tests/helpers/postgres.py).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from soc_api.db.migrate import upgrade
from soc_api.db.models import AlertRow, AlertTechnique
from soc_api.db.session import make_engine, make_session_factory
from soc_api.services import alerts as svc
from soc_api.services.principal import ROLE_PERMISSIONS, Principal
from soc_common.alert import SEVERITY_RANK

NOW = datetime(2025, 6, 1, tzinfo=UTC)
SITES = [f"site-{i:02d}" for i in range(20)]
SEVERITIES = ["informational", "low", "medium", "high", "critical"]
SEV_WEIGHTS = [10, 30, 35, 20, 5]
STATUSES = ["closed", "new", "acknowledged", "in_progress"]
STATUS_WEIGHTS = [85, 8, 4, 3]
TECHNIQUES = [f"T{1000 + i}" for i in range(150)] + ["T1059.001", "T1110.001"]
ADMIN = Principal("admin", "user", ROLE_PERMISSIONS["admin"], None, 1, "admin")
OFFICER = Principal("officer", "user", ROLE_PERMISSIONS["officer"], frozenset({"site-03"}), 2, "officer")


def _rows(n: int, seed: int = 7) -> Iterator[tuple[dict[str, Any], list[str]]]:
    rnd = random.Random(seed)
    for i in range(n):
        ts = NOW - timedelta(seconds=rnd.randrange(90 * 86400))
        sev = rnd.choices(SEVERITIES, SEV_WEIGHTS)[0]
        status = rnd.choices(STATUSES, STATUS_WEIGHTS)[0]
        host = f"pc-{rnd.randrange(5000)}"
        techniques = rnd.sample(TECHNIQUES, rnd.randint(0, 3))
        row = {
            "id": f"{i:032x}",
            "source": "sigma",
            "rule_id": f"rule-{rnd.randrange(300)}",
            "rule_title": "Benchmark rule",
            "rule_level": sev,
            "rule_tags": [],
            "tactics": [],
            "techniques": techniques,
            "severity": sev,
            "severity_rank": SEVERITY_RANK[sev],
            "timestamp": ts,
            "detected_at": ts,
            "group_key": f"host={host}",
            "event_ids": [f"e{i}"],
            "events": [{"event": {"id": f"e{i}"}}],
            "host_name": host,
            "user_name": f"user{rnd.randrange(2000)}",
            "site": rnd.choice(SITES),
            "zone": rnd.choice(["party-wan", "internet", "datacenter"]),
            "system_id": f"sys-{rnd.randrange(50)}",
            "explanation": {},
            "drill": False,
            "status": status,
            "duplicate_count": 0,
            "last_seen": ts,
            "created_at": ts,
            "updated_at": ts,
            "version": 1,
        }
        yield row, techniques


def fill(session_factory: Any, n: int, batch: int = 5000) -> float:
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    techs: list[dict[str, Any]] = []

    def flush() -> None:
        with session_factory.begin() as s:
            s.execute(insert(AlertRow), rows)
            if techs:
                s.execute(insert(AlertTechnique), techs)
        rows.clear()
        techs.clear()

    for row, techniques in _rows(n):
        rows.append(row)
        techs.extend({"alert_id": row["id"], "technique": t, "timestamp": row["timestamp"]} for t in techniques)
        if len(rows) >= batch:
            flush()
    if rows:
        flush()
    return time.perf_counter() - started


def _deep_page(s: Session) -> None:
    cursor = None
    for _ in range(20):
        page = svc.list_alerts(s, ADMIN, svc.AlertFilter(), limit=50, cursor=cursor)
        cursor = page.next_cursor


CASES: list[tuple[str, Callable[[Session], object]]] = [
    ("newest 50 (no filter)", lambda s: svc.list_alerts(s, ADMIN, svc.AlertFilter(), limit=50)),
    ("status=new", lambda s: svc.list_alerts(s, ADMIN, svc.AlertFilter(status=["new"]), limit=50)),
    (
        "open high+critical, by severity",
        lambda s: svc.list_alerts(
            s,
            ADMIN,
            svc.AlertFilter(status=["new", "acknowledged", "in_progress"], severity=["high", "critical"]),
            sort="-severity",
            limit=50,
        ),
    ),
    ("technique=T1059.001", lambda s: svc.list_alerts(s, ADMIN, svc.AlertFilter(technique=["T1059.001"]), limit=50)),
    ("host=pc-123", lambda s: svc.list_alerts(s, ADMIN, svc.AlertFilter(host=["pc-123"]), limit=50)),
    ("user=user42", lambda s: svc.list_alerts(s, ADMIN, svc.AlertFilter(user=["user42"]), limit=50)),
    (
        "site-scoped officer, status=new",
        lambda s: svc.list_alerts(s, OFFICER, svc.AlertFilter(status=["new"]), limit=50),
    ),
    (
        "last 24 h",
        lambda s: svc.list_alerts(s, ADMIN, svc.AlertFilter(start=NOW - timedelta(days=1), end=NOW), limit=50),
    ),
    (
        "rule + status=new",
        lambda s: svc.list_alerts(s, ADMIN, svc.AlertFilter(rule_id=["rule-7"], status=["new"]), limit=50),
    ),
    ("20 pages deep (cursor)", _deep_page),
]


def measure(session_factory: Any, repeat: int) -> list[tuple[str, float, float]]:
    out = []
    with session_factory() as s:
        for name, fn in CASES:
            fn(s)  # warm-up
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                fn(s)
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            out.append((name, statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]))
    return out


@contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.helpers
    from tests.helpers.postgres import running_postgres

    with running_postgres() as server:
        yield server.create_database()


def run(backend: str, url: str, n: int, repeat: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    seconds = fill(sessions, n)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"\n{backend}: {n:,} alerts inserted in {seconds:.1f} s ({n / seconds:,.0f}/s)")
    print(f"{'query':40} {'median ms':>10} {'p95 ms':>10}")
    for name, median, p95 in measure(sessions, repeat):
        print(f"{name:40} {median:10.2f} {p95:10.2f}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--alerts", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    backends = args.backends.split(",")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            run("sqlite", f"sqlite:///{tmp}/bench.db", args.alerts, args.repeat)
    if "postgresql" in backends:
        with _postgres(args.pg_url) as url:
            run("postgresql", url, args.alerts, args.repeat)


if __name__ == "__main__":
    main()
