"""Sample events for the store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from soc_common.ecs import Event, iso, new_event

BASE_TIME = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_event(i: int, *, seconds: float | None = None, fields: dict[str, Any] | None = None) -> Event:
    """A small realistic auth event number ``i``; ``fields`` are dotted paths to set."""
    ts = BASE_TIME + timedelta(seconds=i if seconds is None else seconds)
    event = new_event(dataset="system.auth", module="system", timestamp=ts, event_id=f"evt-{i:05d}")
    event["event"].update(
        action="ssh_login",
        category=["authentication"],
        outcome="failure" if i % 2 else "success",
        ingested=iso(ts + timedelta(seconds=5)),
    )
    event["source"] = {"ip": f"10.1.{i % 4}.{i % 250 + 1}", "port": 40000 + i}
    event["user"] = {"name": f"user{i % 3}"}
    event["host"] = {"name": "srv-01"}
    event["soc"] = {"site": "hanoi", "agent_id": "agent-1"}
    event["related"] = {"ip": [event["source"]["ip"], "192.0.2.1"]}
    event["tags"] = ["auth"] + (["even"] if i % 2 == 0 else [])
    for path, value in (fields or {}).items():
        node = event
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return event
