"""Facts read off an event for alerts, hunt output and correlations: host, user, id, time.

Kept apart from :mod:`alerts` (which builds pydantic ``Alert`` records) so ``soc hunt`` and the
matching engine never import the alert model: loading pydantic's model machinery costs a
detection worker about a tenth of a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from soc_common.ecs import get, parse_ts, stable_event_id


def first_value(event: Mapping[str, Any], *paths: str) -> str | None:
    """The first of ``paths`` holding a real value (not empty, not ``-``), as text."""
    for path in paths:
        value = get(event, path)
        if value not in (None, "", "-"):
            if isinstance(value, list):
                value = value[0] if value else None
                if value is None:
                    continue
            return str(value)
    return None


def host_of(event: Mapping[str, Any]) -> str | None:
    return first_value(event, "host.name", "host.hostname", "winlog.computer_name")


def user_of(event: Mapping[str, Any]) -> str | None:
    return first_value(event, "user.name", "winlog.event_data.TargetUserName", "winlog.event_data.SubjectUserName")


def event_id_of(event: Mapping[str, Any]) -> str:
    """The event's id, or a stable one from its content when it has none (so alert ids stay stable)."""
    value = get(event, "event.id")
    if value:
        return str(value)
    return stable_event_id("content", json.dumps(event, sort_keys=True, default=str))


def event_time(event: Mapping[str, Any]) -> datetime | None:
    value = get(event, "@timestamp")
    if value is None:
        return None
    try:
        return parse_ts(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return None
