"""Turn a rule match into a :class:`soc_common.alert.Alert`: ATT&CK from tags, key fields, ids."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from collector.detection.specs import RuleMeta
from soc_common.alert import Alert
from soc_common.ecs import get, parse_ts, stable_event_id

# Fields copied into Alert.events (bounded): enough to triage without opening the event store.
KEY_FIELDS = (
    "@timestamp", "event.id", "event.code", "event.action", "event.dataset", "event.outcome",
    "host.name", "host.hostname", "winlog.computer_name", "winlog.channel",
    "user.name", "user.effective.name", "source.ip", "source.port", "destination.ip", "destination.port",
    "process.name", "process.executable", "process.command_line", "process.parent.executable",
    "winlog.event_data.Image", "winlog.event_data.CommandLine", "winlog.event_data.ParentImage",
    "winlog.event_data.TargetUserName", "winlog.event_data.ServiceName", "winlog.event_data.ImagePath",
    "url.original", "dns.question.name", "message",
    "soc.site", "soc.zone", "soc.system_id",
)  # fmt: skip
MAX_FIELD_CHARS = 1024
MAX_EVENTS_PER_ALERT = 20

_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")
_OTHER_ATTACK = re.compile(r"^[gs]\d{4}$")  # groups and software, not tactics

# Hook for later severity inputs (asset criticality, zone): gets the alert and the event, returns severity.
SeverityHook = Callable[[Alert, Mapping[str, Any]], str]


def attack_from_tags(tags: Sequence[str]) -> tuple[list[str], list[str]]:
    """``attack.t1110.001`` -> ``T1110.001``; ``attack.credential_access`` -> ``credential-access``."""
    tactics: list[str] = []
    techniques: list[str] = []
    for tag in tags:
        namespace, _, name = tag.lower().partition(".")
        if namespace != "attack" or not name:
            continue
        if _TECHNIQUE.match(name):
            techniques.append(name.upper())
        elif not _OTHER_ATTACK.match(name):
            tactics.append(name.replace("_", "-"))
    return list(dict.fromkeys(tactics)), list(dict.fromkeys(techniques))


def _first(event: Mapping[str, Any], *paths: str) -> str | None:
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
    return _first(event, "host.name", "host.hostname", "winlog.computer_name")


def user_of(event: Mapping[str, Any]) -> str | None:
    return _first(event, "user.name", "winlog.event_data.TargetUserName", "winlog.event_data.SubjectUserName")


def event_id_of(event: Mapping[str, Any]) -> str:
    """The event's id, or a stable one from its content when it has none (so alert ids stay stable)."""
    value = get(event, "event.id")
    if value:
        return str(value)
    return stable_event_id("content", json.dumps(event, sort_keys=True, default=str))


def key_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in KEY_FIELDS:
        value = get(event, path)
        if value is None:
            continue
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            value = value[:MAX_FIELD_CHARS] + "…"
        out[path] = value
    return out


def event_time(event: Mapping[str, Any]) -> datetime | None:
    value = get(event, "@timestamp")
    if value is None:
        return None
    try:
        return parse_ts(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return None


def build_alert(
    meta: RuleMeta,
    events: Sequence[Mapping[str, Any]],
    *,
    source: str = "sigma",
    group_key: str | None = None,
    explanation: dict[str, Any] | None = None,
    event_ids: Sequence[str] | None = None,
    severity_hook: SeverityHook | None = None,
) -> Alert:
    """An alert for ``meta`` over ``events`` (first = the one that started it, last = the newest)."""
    first, last = events[0], events[-1]
    ids = list(event_ids) if event_ids is not None else [event_id_of(e) for e in events]
    host, user = host_of(last), user_of(last)
    src = _first(last, "source.ip")
    if group_key is None:
        group_key = "|".join([meta.id, host or "", user or "", src or ""])
    tactics, techniques = attack_from_tags(meta.tags)
    now = datetime.now(UTC)
    alert = Alert(
        id=Alert.make_id(meta.id, group_key, ids[0] if ids else ""),
        source=source,  # type: ignore[arg-type]
        rule_id=meta.id,
        rule_title=meta.title,
        rule_level=meta.severity,  # type: ignore[arg-type]
        rule_tags=list(meta.tags),
        tactics=tactics,
        techniques=techniques,
        severity=meta.severity,  # type: ignore[arg-type]
        timestamp=event_time(first) or now,
        detected_at=now,
        group_key=group_key,
        event_ids=ids[-MAX_EVENTS_PER_ALERT * 5 :],
        events=[key_fields(e) for e in events[-MAX_EVENTS_PER_ALERT:]],
        host_name=host,
        user_name=user,
        source_ip=src,
        destination_ip=_first(last, "destination.ip"),
        site=_first(last, "soc.site"),
        zone=_first(last, "soc.zone"),
        system_id=_first(last, "soc.system_id"),
        explanation=explanation or {},
    )
    if severity_hook is not None:
        alert.severity = severity_hook(alert, last)  # type: ignore[assignment]
    return alert
