"""Per-rule checkpoints and run reports, in a small SQLite file under the data directory.

A checkpoint is the upper bound (on ``event.ingested``) of the last window a rule completed; the
next window starts exactly there, half-open ``(checkpoint, end]``, so a restart neither skips nor
repeats events. The run record and the checkpoint advance in one transaction: a crash mid-run
leaves the old checkpoint, the window is redone, and deterministic alert ids make the redone
alerts the same alerts. A failed run is recorded but does not move the checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.statefile import StateFile
from soc_common.ecs import iso, parse_ts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    rule_id TEXT PRIMARY KEY,
    window_end TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id TEXT NOT NULL,
    rule_title TEXT NOT NULL,
    window_start TEXT,
    window_end TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    hits INTEGER NOT NULL,
    alerts INTEGER NOT NULL,
    overflow INTEGER NOT NULL,
    error TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_rule ON runs (rule_id, id);
"""


@dataclass
class RunReport:
    """One run of one rule over one window."""

    rule_id: str
    rule_title: str
    window_start: datetime | None  # exclusive; None = the rule's first run (initial look-back)
    window_end: datetime  # inclusive
    started_at: datetime
    duration_ms: float = 0.0
    hits: int = 0
    alerts: int = 0
    overflow: int = 0  # hits beyond the per-run cap that were not turned into alerts
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "rule_title": self.rule_title,
            "window_start": iso(self.window_start) if self.window_start else None,
            "window_end": iso(self.window_end),
            "started_at": iso(self.started_at),
            "duration_ms": round(self.duration_ms, 3),
            "hits": self.hits,
            "alerts": self.alerts,
            "overflow": self.overflow,
            "error": self.error,
            "details": self.details,
        }


def _ts(value: datetime) -> str:
    """Microsecond precision: checkpoints must round-trip exactly."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StateStore(StateFile):
    """Checkpoints and run reports; safe to share between scheduler threads."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def checkpoint(self, rule_id: str) -> datetime | None:
        with self._lock:
            row = self._db.execute("SELECT window_end FROM checkpoints WHERE rule_id = ?", (rule_id,)).fetchone()
        return parse_ts(row[0]) if row else None

    def checkpoints(self) -> dict[str, datetime]:
        with self._lock:
            rows = self._db.execute("SELECT rule_id, window_end FROM checkpoints ORDER BY rule_id").fetchall()
        return {rid: parse_ts(end) for rid, end in rows}

    def record(self, report: RunReport, *, advance: bool) -> RunReport:
        """Store the report; when ``advance``, move the rule's checkpoint to its window end, atomically."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs (rule_id, rule_title, window_start, window_end, started_at, duration_ms,"
                " hits, alerts, overflow, error, details) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    report.rule_id,
                    report.rule_title,
                    _ts(report.window_start) if report.window_start else None,
                    _ts(report.window_end),
                    _ts(report.started_at),
                    report.duration_ms,
                    report.hits,
                    report.alerts,
                    report.overflow,
                    report.error,
                    json.dumps(report.details, default=str),
                ),
            )
            report.id = cur.lastrowid
            if advance:
                db.execute(
                    "INSERT INTO checkpoints (rule_id, window_end, updated_at) VALUES (?,?,?)"
                    " ON CONFLICT(rule_id) DO UPDATE SET window_end = excluded.window_end,"
                    " updated_at = excluded.updated_at",
                    (report.rule_id, _ts(report.window_end), _ts(report.started_at)),
                )
        return report

    def runs(self, rule_id: str | None = None, *, limit: int = 100, errors_only: bool = False) -> list[RunReport]:
        """Newest first."""
        sql = "SELECT id, rule_id, rule_title, window_start, window_end, started_at, duration_ms, hits, alerts,"
        sql += " overflow, error, details FROM runs WHERE 1=1"
        args: list[Any] = []
        if rule_id is not None:
            sql += " AND rule_id = ?"
            args.append(rule_id)
        if errors_only:
            sql += " AND error IS NOT NULL"
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(max(int(limit), 0))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            RunReport(
                id=r[0],
                rule_id=r[1],
                rule_title=r[2],
                window_start=parse_ts(r[3]) if r[3] else None,
                window_end=parse_ts(r[4]),
                started_at=parse_ts(r[5]),
                duration_ms=r[6],
                hits=r[7],
                alerts=r[8],
                overflow=r[9],
                error=r[10],
                details=json.loads(r[11] or "{}"),
            )
            for r in rows
        ]

    def last_runs(self) -> dict[str, RunReport]:
        """The newest run of every rule."""
        with self._lock:
            rows = self._db.execute("SELECT rule_id, MAX(id) FROM runs GROUP BY rule_id").fetchall()
        out: dict[str, RunReport] = {}
        for rule_id, run_id in rows:
            newest = self.runs(rule_id, limit=1)
            if newest and newest[0].id == run_id:
                out[rule_id] = newest[0]
        return out
