"""JSON lines: each line one object, merged into the event as it is.

ECS-shaped objects (from an application logging ECS, or re-imported events) keep their fields;
other objects keep their own keys at the top level. Keys that would collide with an ECS object
field the pipeline relies on (``event``, ``log``, ``host`` ... holding a scalar) are moved under
``json.`` rather than overwritten, so nothing the application wrote is lost.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from soc_common.ecs import ECS_VERSION, Event, add_tag, iso, put
from soc_common.parsers.common import DEFAULT_OPTIONS, ParseOptions, failed_event, to_utc_iso

DATASET = "json"
FAILURE_TAG = "_jsonparsefailure"
TIMESTAMP_KEYS = ("@timestamp", "timestamp", "time", "ts")

# Top-level ECS fields that must stay objects: the pipeline writes below them.
_OBJECT_FIELDS = frozenset(
    {"event", "ecs", "log", "host", "agent", "source", "destination", "user", "process", "file", "url",
     "http", "related", "labels", "network", "observer", "soc", "service", "container", "cloud", "client",
     "server", "dns", "tls", "user_agent", "winlog", "system", "group", "error"}
)  # fmt: skip


def looks_like_json(line: str) -> bool:
    return line.lstrip()[:1] == "{"


def parse_json_line(line: str, opts: ParseOptions = DEFAULT_OPTIONS) -> Event:
    """One JSON object per line; anything else is kept and tagged ``_jsonparsefailure``."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return failed_event(line, DATASET, f"invalid JSON: {exc}", FAILURE_TAG, opts.read_time)
    if not isinstance(obj, dict):
        reason = f"JSON value is a {type(obj).__name__}, not an object"
        return failed_event(line, DATASET, reason, FAILURE_TAG, opts.read_time)
    event = _expand(obj)
    _protect_object_fields(event)
    event.setdefault("ecs", {}).setdefault("version", ECS_VERSION)
    meta: dict[str, Any] = event.setdefault("event", {})
    meta.setdefault("kind", "event")
    if not isinstance(meta.get("dataset"), str):
        meta["dataset"] = DATASET
    meta["original"] = line
    if not isinstance(event.get("tags", []), list):
        event["tags"] = [str(event["tags"])]
    _timestamp(event, opts)
    if "message" not in event and isinstance(event.get("json", {}).get("log"), str):
        event["message"] = event["json"]["log"]  # Docker's json-file driver: {"log": "...\n"}
    return event


def _expand(obj: dict[str, Any]) -> Event:
    """Expand dotted keys (``"source.ip"``) into objects; a clash keeps the flat key as is."""
    out: Event = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            value = _expand(value)
        if "." in key:
            if _would_clobber(out, key):
                out[key] = value
            else:
                put(out, key, value)
        elif key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _would_clobber(out: Event, dotted: str) -> bool:
    """True if expanding ``dotted`` would overwrite a value already there."""
    node: Any = out
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return True
        if part not in node:
            return False
        node = node[part]
    return True


def _protect_object_fields(event: Event) -> None:
    for key in _OBJECT_FIELDS:
        if key in event and not isinstance(event[key], dict):
            event.setdefault("json", {})
            if not isinstance(event["json"], dict):
                event["json"] = {"json": event["json"]}
            event["json"][key] = event.pop(key)


def _timestamp(event: Event, opts: ParseOptions) -> None:
    for key in TIMESTAMP_KEYS:
        value = event.get(key)
        if value is None:
            continue
        parsed = _parse_time(value, opts)
        if parsed is not None:
            event["@timestamp"] = parsed
            return
        add_tag(event, "_timestampparsefailure")
        break
    event["@timestamp"] = opts.read_time or iso(datetime.now(UTC))


def _parse_time(value: Any, opts: ParseOptions) -> str | None:
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            seconds = value / 1000.0 if abs(value) > 1e11 else float(value)
            return iso(datetime.fromtimestamp(seconds, UTC))
        if isinstance(value, str):
            text = value.strip()
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            return to_utc_iso(datetime.fromisoformat(text), opts.tz)
    except (ValueError, OverflowError, OSError):
        return None
    return None
