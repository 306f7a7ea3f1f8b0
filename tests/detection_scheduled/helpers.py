"""Shared test helpers: rule files, events with ingest times, a list alert sink, a settable clock."""

from __future__ import annotations

import itertools
import textwrap
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from soc_common.alert import Alert
from soc_common.ecs import iso

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data"
RULES = REPO / "rules"
T0 = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
_ids = itertools.count()


class ListSink:
    """Collects emitted alerts; the AlertSink protocol."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def emit(self, alerts: Sequence[Alert]) -> None:
        self.alerts.extend(alerts)

    def ids(self) -> list[str]:
        return [a.id for a in self.alerts]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def write_rule(
    folder: Path, detection: str, *, logsource: str = "product: linux\nservice: auth", extra: str = ""
) -> str:
    """Write a rule file; return its id."""
    folder.mkdir(parents=True, exist_ok=True)
    rule_id = str(uuid.uuid4())
    text = (
        f"title: Test rule {rule_id[:8]}\nid: {rule_id}\nstatus: test\nlevel: medium\n"
        f"logsource:\n{textwrap.indent(logsource, '    ')}\n"
        f"detection:\n{textwrap.indent(textwrap.dedent(detection), '    ')}\n{extra}"
    )
    (folder / f"{rule_id}.yml").write_text(text, encoding="utf-8")
    return rule_id


def auth_event(action: str, *, ts: datetime, ingested: datetime, **fields: Any) -> dict[str, Any]:
    """A system.auth event with explicit event and ingest times."""
    event: dict[str, Any] = {
        "@timestamp": iso(ts),
        "event": {"id": f"ev-{next(_ids)}", "dataset": "system.auth", "action": action, "ingested": iso(ingested)},
    }
    for path, value in fields.items():
        node = event
        *parents, leaf = path.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return event
