"""Detector state in a small SQLite file: checkpoints, baselines, first-seen sets, reported alerts, overrides.

A detector's run over a window commits its new state and its checkpoint in one transaction, after
its alerts were handed to the sink: a crash before the commit redoes the window, and the
deterministic alert ids (window start in the group key) plus the ``reported`` table make the redo
emit nothing twice. Overrides keep an append-only audit trail (who, why, when, what).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.statefile import StateFile
from soc_common.ecs import parse_ts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (detector TEXT PRIMARY KEY, window_end TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (detector TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (detector, key));
CREATE TABLE IF NOT EXISTS seen (detector TEXT NOT NULL, entity TEXT NOT NULL, item TEXT NOT NULL,
    first_seen TEXT NOT NULL, PRIMARY KEY (detector, entity, item));
CREATE TABLE IF NOT EXISTS reported (id TEXT PRIMARY KEY, detector TEXT NOT NULL, rule_id TEXT NOT NULL,
    timestamp TEXT NOT NULL, detected_at TEXT NOT NULL, alert TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reported_detector ON reported (detector, detected_at);
CREATE TABLE IF NOT EXISTS overrides (site TEXT NOT NULL, detector TEXT NOT NULL, params TEXT NOT NULL,
    actor TEXT NOT NULL, reason TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (site, detector));
CREATE TABLE IF NOT EXISTS override_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, site TEXT NOT NULL,
    detector TEXT NOT NULL, params TEXT NOT NULL, previous TEXT, actor TEXT NOT NULL, reason TEXT NOT NULL,
    at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (detector TEXT PRIMARY KEY, finished_at TEXT NOT NULL, duration_ms REAL NOT NULL,
    windows INTEGER NOT NULL, alerts INTEGER NOT NULL, error TEXT);
"""


def ts_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


class StateTx:
    """The writes of one detector window, applied atomically by :meth:`AnomalyState.commit`."""

    def __init__(self, detector: str) -> None:
        self.detector = detector
        self.kv: dict[str, Any] = {}
        self.deleted: set[str] = set()
        self.seen: list[tuple[str, str, str]] = []
        self.checkpoint: datetime | None = None

    def put(self, key: str, value: Any) -> None:
        self.kv[key] = value
        self.deleted.discard(key)

    def delete(self, key: str) -> None:
        self.kv.pop(key, None)
        self.deleted.add(key)

    def add_seen(self, entity: str, item: str, first_seen: datetime) -> None:
        self.seen.append((entity, item, ts_text(first_seen)))


class AnomalyState(StateFile):
    """Thread-safe; one connection behind a lock (writes are small and infrequent)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    # -- checkpoints and detector state -----------------------------------------------------------

    def checkpoint(self, detector: str) -> datetime | None:
        rows = self._rows("SELECT window_end FROM checkpoints WHERE detector = ?", (detector,))
        return parse_ts(rows[0][0]) if rows else None

    def checkpoints(self) -> dict[str, datetime]:
        return {d: parse_ts(t) for d, t in self._rows("SELECT detector, window_end FROM checkpoints")}

    def load(self, detector: str, prefix: str = "") -> dict[str, Any]:
        rows = self._rows(
            "SELECT key, value FROM kv WHERE detector = ? AND key >= ? AND key < ?",
            (detector, prefix, prefix + "\uffff"),
        )
        return {key: json.loads(value) for key, value in rows}

    def get(self, detector: str, key: str, default: Any = None) -> Any:
        rows = self._rows("SELECT value FROM kv WHERE detector = ? AND key = ?", (detector, key))
        return json.loads(rows[0][0]) if rows else default

    def seen_items(self, detector: str, entity: str) -> set[str]:
        return {r[0] for r in self._rows("SELECT item FROM seen WHERE detector = ? AND entity = ?", (detector, entity))}

    def seen_count(self, detector: str) -> int:
        return int(self._rows("SELECT COUNT(*) FROM seen WHERE detector = ?", (detector,))[0][0])

    def commit(self, tx: StateTx) -> None:
        now = ts_text(datetime.now(UTC))
        with self._tx() as db:
            db.executemany(
                "INSERT INTO kv (detector, key, value) VALUES (?,?,?) ON CONFLICT(detector, key) DO UPDATE SET "
                "value = excluded.value",
                [(tx.detector, k, _dump(v)) for k, v in tx.kv.items()],
            )
            db.executemany("DELETE FROM kv WHERE detector = ? AND key = ?", [(tx.detector, k) for k in tx.deleted])
            db.executemany(
                "INSERT OR IGNORE INTO seen (detector, entity, item, first_seen) VALUES (?,?,?,?)",
                [(tx.detector, *row) for row in tx.seen],
            )
            if tx.checkpoint is not None:
                db.execute(
                    "INSERT INTO checkpoints (detector, window_end, updated_at) VALUES (?,?,?) ON CONFLICT(detector) "
                    "DO UPDATE SET window_end = excluded.window_end, updated_at = excluded.updated_at",
                    (tx.detector, ts_text(tx.checkpoint), now),
                )

    # -- reported alerts ----------------------------------------------------------------------------

    def unreported(self, alert_ids: Iterable[str]) -> set[str]:
        ids = list(alert_ids)
        known: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            known |= {r[0] for r in self._rows(f"SELECT id FROM reported WHERE id IN ({marks})", chunk)}
        return set(ids) - known

    def mark_reported(self, detector: str, alerts: Iterable[dict[str, Any]]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO reported (id, detector, rule_id, timestamp, detected_at, alert)"
                " VALUES (?,?,?,?,?,?)",
                [
                    (a["id"], detector, a["rule_id"], str(a["timestamp"]), str(a["detected_at"]), _dump(a))
                    for a in alerts
                ],
            )

    def reported(self, alert_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT alert FROM reported WHERE id = ?", (alert_id,))
        return json.loads(rows[0][0]) if rows else None

    def reported_counts(self) -> dict[str, int]:
        return {d: int(n) for d, n in self._rows("SELECT detector, COUNT(*) FROM reported GROUP BY detector")}

    # -- runs ---------------------------------------------------------------------------------------

    def record_run(self, detector: str, duration_ms: float, windows: int, alerts: int, error: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (detector, finished_at, duration_ms, windows, alerts, error) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(detector) DO UPDATE SET finished_at = excluded.finished_at, duration_ms = "
                "excluded.duration_ms, windows = excluded.windows, alerts = excluded.alerts, error = excluded.error",
                (detector, ts_text(datetime.now(UTC)), duration_ms, windows, alerts, error),
            )

    def last_runs(self) -> dict[str, dict[str, Any]]:
        rows = self._rows("SELECT detector, finished_at, duration_ms, windows, alerts, error FROM runs")
        return {
            r[0]: {"finished_at": r[1], "duration_ms": round(r[2], 1), "windows": r[3], "alerts": r[4], "error": r[5]}
            for r in rows
        }

    # -- overrides ----------------------------------------------------------------------------------

    def overrides(self) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for site, detector, params in self._rows("SELECT site, detector, params FROM overrides"):
            out.setdefault(site, {})[detector] = json.loads(params)
        return out

    def set_override(self, site: str, detector: str, params: dict[str, Any], actor: str, reason: str) -> None:
        now = ts_text(datetime.now(UTC))
        with self._tx() as db:
            row = db.execute(
                "SELECT params FROM overrides WHERE site = ? AND detector = ?", (site, detector)
            ).fetchone()
            if params:
                db.execute(
                    "INSERT INTO overrides (site, detector, params, actor, reason, updated_at) VALUES (?,?,?,?,?,?) "
                    "ON CONFLICT(site, detector) DO UPDATE SET params = excluded.params, actor = excluded.actor, "
                    "reason = excluded.reason, updated_at = excluded.updated_at",
                    (site, detector, _dump(params), actor, reason, now),
                )
            else:
                db.execute("DELETE FROM overrides WHERE site = ? AND detector = ?", (site, detector))
            db.execute(
                "INSERT INTO override_audit (site, detector, params, previous, actor, reason, at)"
                " VALUES (?,?,?,?,?,?,?)",
                (site, detector, _dump(params), row[0] if row else None, actor, reason, now),
            )

    def override_audit(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT site, detector, params, previous, actor, reason, at FROM override_audit ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            {
                "site": r[0],
                "detector": r[1],
                "params": json.loads(r[2]),
                "previous": json.loads(r[3]) if r[3] else None,
                "actor": r[4],
                "reason": r[5],
                "at": r[6],
            }
            for r in rows
        ]
