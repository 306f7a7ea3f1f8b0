"""Turn a rule match into a :class:`soc_common.alert.Alert`: ATT&CK from tags, key fields, ids."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

# Re-exported: callers have long imported these from here.
from collector.detection.event_facts import (
    KEY_FIELDS,
    PathTrie,
    event_id_of,
    event_time,
    first_value,
    host_of,
    user_of,
)
from collector.detection.specs import RuleMeta
from soc_common.alert import Alert

MAX_FIELD_CHARS = 1024
MAX_EVENTS_PER_ALERT = 20

_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")
_OTHER_ATTACK = re.compile(r"^[gs]\d{4}$")  # groups and software, not tactics

# Hook for later severity inputs (asset criticality, zone): gets the alert and the event, returns severity.
SeverityHook = Callable[[Alert, Mapping[str, Any]], str]


@functools.lru_cache(maxsize=8192)
def _attack_of(tags: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    tactics, techniques = attack_from_tags(tags)
    return tuple(tactics), tuple(techniques)


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


_KEY_TRIE = PathTrie(KEY_FIELDS)


def key_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if isinstance(event, Mapping):
        _KEY_TRIE.collect(event, found)
    out: dict[str, Any] = {}
    for path in KEY_FIELDS:
        value = found.get(path)
        if value is None:
            continue
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            value = value[:MAX_FIELD_CHARS] + "…"
        out[path] = value
    return out


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
    src = first_value(last, "source.ip")
    if group_key is None:
        group_key = "|".join([meta.id, host or "", user or "", src or ""])
    tactics, techniques = _attack_of(tuple(meta.tags))  # once per rule, not per alert
    now = datetime.now(UTC)
    alert = Alert(
        id=Alert.make_id(meta.id, group_key, ids[0] if ids else ""),
        source=source,  # type: ignore[arg-type]
        rule_id=meta.id,
        rule_title=meta.title,
        rule_level=meta.severity,  # type: ignore[arg-type]
        rule_tags=list(meta.tags),
        tactics=list(tactics),
        techniques=list(techniques),
        severity=meta.severity,  # type: ignore[arg-type]
        timestamp=event_time(first) or now,
        detected_at=now,
        group_key=group_key,
        event_ids=ids[-MAX_EVENTS_PER_ALERT * 5 :],
        events=[key_fields(e) for e in events[-MAX_EVENTS_PER_ALERT:]],
        host_name=host,
        user_name=user,
        source_ip=src,
        destination_ip=first_value(last, "destination.ip"),
        site=first_value(last, "soc.site"),
        zone=first_value(last, "soc.zone"),
        system_id=first_value(last, "soc.system_id"),
        explanation=explanation or {},
    )
    if severity_hook is not None:
        alert.severity = severity_hook(alert, last)  # type: ignore[assignment]
    return alert
