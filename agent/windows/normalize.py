"""One Windows event record (evtx JSON, export JSON, or rendered XML converted) -> one ECS event.

The normaliser never raises: a record missing parts still yields an event, carrying what could be
read plus ``soc.parse_error``, because dropping a half-readable Security event is worse than keeping
it. ``event.id`` derives from (computer, channel, record id, time), so reading the same record again
(a re-imported file, a live source resuming from its bookmark) is recognised as a duplicate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from agent.windows.mappings import MAPPERS, PROVIDER_REQUIRED, sysmon_default
from agent.windows.record import attributes, element_text, event_fields, to_int, to_text
from agent.windows.xml_record import record_to_xml
from soc_common.ecs import ECS_VERSION, Event, iso, parse_ts, stable_event_id, utc_now

#: ``event.original`` is kept for keyword rules and analysts, but bounded: a PowerShell script
#: block can be megabytes and every field is already in ``winlog.event_data``.
MAX_ORIGINAL_CHARS = 32 * 1024

_DATASETS = {
    "security": "windows.security",
    "system": "windows.system",
    "application": "windows.application",
    "microsoft-windows-sysmon/operational": "windows.sysmon",
    "microsoft-windows-powershell/operational": "windows.powershell",
    "windows powershell": "windows.powershell",
    "powershellcore/operational": "windows.powershell",
    "microsoft-windows-windows defender/operational": "windows.defender",
}

_LEVELS = {
    "0": "information",
    "1": "critical",
    "2": "error",
    "3": "warning",
    "4": "information",
    "5": "verbose",
}

_KEYWORD_BITS = (
    (0x0010000000000000, "Audit Failure"),
    (0x0020000000000000, "Audit Success"),
    (0x0080000000000000, "Classic"),
)

_FAST_TS = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z")


def dataset_for_channel(channel: str) -> str:
    """``Security`` -> ``windows.security``; other channels -> ``windows.eventlog``."""
    return _DATASETS.get(channel.lower(), "windows.eventlog")


def _timestamp(system_time: Any) -> str | None:
    """``SystemTime`` (``2019-04-27T15:57:25.868863Z``, 7-digit fractions live) -> ECS ``@timestamp``."""
    if not isinstance(system_time, str):
        return None
    match = _FAST_TS.fullmatch(system_time)
    if match:
        fraction = (match.group(2) or "")[:3].ljust(3, "0")
        return f"{match.group(1)}.{fraction}Z"
    text = system_time.strip().removesuffix(" UTC")
    try:
        return iso(parse_ts(text[:26] + text[27:] if _FAST_TS.fullmatch(text) else text))
    except (ValueError, OverflowError):
        return None


def _keywords(raw: Any) -> list[str] | None:
    number = to_int(raw)
    if number is None:
        return [raw] if isinstance(raw, str) and raw else None
    names = [name for bit, name in _KEYWORD_BITS if number & bit]
    return names or [to_text(raw)]


def _bounded(text: str) -> tuple[str, bool]:
    if len(text) <= MAX_ORIGINAL_CHARS:
        return text, False
    return text[:MAX_ORIGINAL_CHARS], True


def _winlog(system: Mapping[str, Any], event_data: dict[str, Any]) -> dict[str, Any]:
    winlog: dict[str, Any] = {}
    provider = attributes(system, "Provider")
    for key, attr in (("provider_name", "Name"), ("provider_guid", "Guid")):
        if provider.get(attr):
            winlog[key] = to_text(provider[attr])
    for key, field in (("channel", "Channel"), ("computer_name", "Computer")):
        text = element_text(system.get(field))
        if text is not None:
            winlog[key] = to_text(text)
    for key, field in (("opcode", "Opcode"), ("task", "Task"), ("version", "Version")):
        text = element_text(system.get(field))
        if text is not None:
            winlog[key] = to_text(text)
    record_id = to_int(element_text(system.get("EventRecordID")))
    if record_id is not None:
        winlog["record_id"] = record_id
    execution = attributes(system, "Execution")
    pid = to_int(execution.get("ProcessID"))
    if pid is not None:
        winlog["process"] = {"pid": pid}
        tid = to_int(execution.get("ThreadID"))
        if tid is not None:
            winlog["process"]["thread"] = {"id": tid}
    user_id = attributes(system, "Security").get("UserID")
    if user_id:
        winlog["user"] = {"identifier": to_text(user_id)}
    keywords = _keywords(element_text(system.get("Keywords")))
    if keywords:
        winlog["keywords"] = keywords
    correlation = attributes(system, "Correlation")
    for key, attr in (("activity_id", "ActivityID"), ("related_activity_id", "RelatedActivityID")):
        if correlation.get(attr):
            winlog[key] = to_text(correlation[attr])
    winlog["event_data"] = event_data
    return winlog


def _build(record: Mapping[str, Any], original: str | None) -> Event:
    root = record.get("Event", record)
    if not isinstance(root, Mapping):
        raise TypeError("record has no Event object")
    problems: list[str] = []
    system = root.get("System")
    if not isinstance(system, Mapping):
        problems.append("no System element")
        system = {}
    data = event_fields(root)
    winlog = _winlog(system, data)
    event_code = to_text(element_text(system.get("EventID")))
    if isinstance(event_code, list) or not event_code:
        problems.append("no EventID")
        event_code = ""
    winlog["event_id"] = event_code
    channel = winlog.get("channel", "")
    computer = winlog.get("computer_name", "")
    timestamp = _timestamp(attributes(system, "TimeCreated").get("SystemTime"))
    if timestamp is None:
        problems.append("no valid TimeCreated/SystemTime")
    dataset = dataset_for_channel(channel)
    ev: dict[str, Any] = {
        "id": stable_event_id(computer, channel, winlog.get("record_id", ""), timestamp or ""),
        "kind": "event",
        "dataset": dataset,
        "module": "windows",
        "code": event_code,
    }
    provider = winlog.get("provider_name")
    if provider:
        ev["provider"] = provider
    event: Event = {
        "@timestamp": timestamp or iso(utc_now()),
        "ecs": {"version": ECS_VERSION},
        "event": ev,
        "winlog": winlog,
    }
    if computer:
        event["host"] = {"name": computer}
    level = _LEVELS.get(to_text(element_text(system.get("Level"))))
    if level:
        event["log"] = {"level": level}
    keywords = winlog.get("keywords", ())
    if "Audit Success" in keywords:
        ev["outcome"] = "success"
    elif "Audit Failure" in keywords:
        ev["outcome"] = "failure"
    rendering = root.get("RenderingInfo")
    if isinstance(rendering, Mapping) and isinstance(rendering.get("Message"), str):
        event["message"] = rendering["Message"]
    key = (dataset, event_code)
    mapper = MAPPERS.get(key)
    required_provider = PROVIDER_REQUIRED.get(key)
    if required_provider and (provider or "").lower() != required_provider:
        mapper = None
    if mapper is None and dataset == "windows.sysmon":
        mapper = sysmon_default
    if mapper is not None:
        try:
            mapper(event, data)
        except Exception as exc:  # a mapping bug must not cost the event
            problems.append(f"ECS mapping failed: {type(exc).__name__}: {exc}")
    text, truncated = _bounded(original if original is not None else record_to_xml(record))
    ev["original"] = text
    if truncated:
        event["tags"] = ["original_truncated"]
    if problems:
        event["soc"] = {"parse_error": "; ".join(problems)}
    return event


def _fallback(record: Any, original: str | None, exc: BaseException) -> Event:
    """The event for a record too broken to read at all: kept, with the reason and its text."""
    if original is None:
        try:
            original = json.dumps(record, default=str, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            original = repr(record)
    text, truncated = _bounded(original)
    event: Event = {
        "@timestamp": iso(utc_now()),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "id": stable_event_id("windows-unreadable", text),
            "kind": "event",
            "dataset": "windows.eventlog",
            "module": "windows",
            "original": text,
        },
        "soc": {"parse_error": f"unreadable Windows event record: {type(exc).__name__}: {exc}"[:500]},
    }
    if truncated:
        event["tags"] = ["original_truncated"]
    return event


def unreadable_event(original: str, reason: str) -> Event:
    """The event for source text that is not a Windows event at all (kept, never dropped)."""
    return _fallback(None, original, ValueError(reason))


def _plain(node: Any) -> Any:
    """Mappings other than dict (read-only views, ordered dicts of a converter) -> plain dicts."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    return node


def normalize_event(record: Mapping[str, Any], *, original: str | None = None) -> Event:
    """Turn one Windows event record into an ECS event; never raises.

    ``original`` is the record's source text when there is one (the live API's XML); otherwise
    ``event.original`` is rendered as compact XML from the record.
    """
    try:
        if not isinstance(record, Mapping):
            raise TypeError(f"record is a {type(record).__name__}, not an object")
        return _build(record if type(record) is dict else _plain(record), original)
    except Exception as exc:
        return _fallback(record, original, exc)
