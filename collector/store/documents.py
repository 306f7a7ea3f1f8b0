"""Validation and time handling shared by every store.

Both stores reject the same documents for the same reasons (no ``event.id``, no or unparseable
``@timestamp``), so a batch produces the same ``WriteResult`` wherever it is written; the checks
happen before anything touches the backend, so one bad document never costs the good ones.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from soc_common.ecs import Event, get, parse_ts, unflatten

MAX_ID_BYTES = 512  # Elasticsearch's _id limit; enforced everywhere so the stores agree
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EVENT_ID = ("event", "id")
_INGESTED = ("event", "ingested")


@dataclass(slots=True)
class Prepared:
    """A document that passed validation, with its identity and times extracted.

    Not frozen: one is made per event, and a frozen dataclass's ``__init__`` costs twice as much."""

    position: int
    event_id: str
    timestamp_us: int
    ingested_us: int | None
    doc: Event


#: timestamp text -> epoch microseconds; the same texts recur (a batch shares ``event.ingested``,
#: bursts share a second). A dict emptied when full: an LRU's bookkeeping cost more than a miss saves.
_TEXT_US: dict[str, int] = {}
#: "YYYY-MM-DDTHH:MM:SS" -> epoch microseconds of that second
_SECOND_US: dict[str, int] = {}
_CACHE_ENTRIES = 16384


def to_epoch_us(value: Any) -> int:
    """Epoch microseconds (UTC) from an ECS timestamp: ISO string, epoch number or datetime."""
    if type(value) is str:
        us = _TEXT_US.get(value)
        if us is None:
            if len(_TEXT_US) >= _CACHE_ENTRIES:
                _TEXT_US.clear()
            us = _TEXT_US[value] = _text_epoch_us(value)
        return us
    return (parse_ts(value) - _EPOCH) // _MICROSECOND


def _text_epoch_us(value: str) -> int:
    """The canonical millisecond form (everything Normalize lets through) as a cached second plus
    three digits: flows have a new millisecond per record, and a full parse each cost 0.8 µs."""
    if len(value) == 24 and value[19] == "." and value[23] == "Z":
        fraction = value[20:23]
        if fraction.isdigit() and fraction.isascii():
            head = value[:19]
            second = _SECOND_US.get(head)
            if second is None:
                if len(_SECOND_US) >= _CACHE_ENTRIES:
                    _SECOND_US.clear()
                second = _SECOND_US[head] = _parse_text_us(head + ".000Z")
            return second + int(fraction) * 1000
    return _parse_text_us(value)


def _parse_text_us(value: str) -> int:
    if value.endswith("Z"):
        try:  # fast path for the ECS form; Python 3.11 parses the trailing Z itself
            ts = datetime.fromisoformat(value)
        except ValueError:
            ts = parse_ts(value)
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
    else:
        ts = parse_ts(value)
    return (ts - _EPOCH) // _MICROSECOND


def from_epoch_us(value: int) -> datetime:
    seconds, micros = divmod(value, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)


def lookup(doc: Event, parts: tuple[str, ...]) -> Any:
    """Value at a pre-split nested path of a nested document, or None (the hot-path getter)."""
    node: Any = doc
    for part in parts:
        try:
            node = node[part]
        except (KeyError, TypeError, IndexError):
            return None
    return node


def _has_dotted_keys(node: dict[str, Any]) -> bool:
    for key, value in node.items():
        if "." in key:
            return True
        if type(value) is dict and _has_dotted_keys(value):
            return True
    return False


def nest(doc: Mapping[str, Any]) -> Event:
    """Turn half-flattened documents (``{"source.ip": ...}``) into nested ECS.

    The embedded store addresses fields by nested JSON path, so a flat key would otherwise be
    invisible to its queries (Elasticsearch expands dotted names itself). ``@timestamp`` has no dot,
    so it is unaffected.
    """
    if type(doc) is dict and not _has_dotted_keys(doc):
        return doc
    flat: dict[str, Any] = {}
    _flatten_into(doc, "", flat)
    return unflatten(flat)


def _flatten_into(node: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in node.items():
        name = prefix + key
        if isinstance(value, Mapping) and value:
            _flatten_into(value, name + ".", out)
        else:
            out[name] = value


def prepare(position: int, raw: Any) -> Prepared | str:
    """Validate one document; return it prepared or the reason it cannot be stored."""
    if not isinstance(raw, Mapping):
        return f"not a JSON object ({type(raw).__name__})"
    doc: Event = raw if type(raw) is dict else dict(raw)
    eid = lookup(doc, _EVENT_ID)
    if eid is None and _has_dotted_keys(doc):
        doc = nest(doc)
        eid = lookup(doc, _EVENT_ID)
    if not isinstance(eid, str) or not eid:
        return "missing event.id"
    if len(eid.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        return f"event.id longer than {MAX_ID_BYTES} bytes"
    ts_raw = doc.get("@timestamp")
    if ts_raw is None:
        return "missing @timestamp"
    try:
        ts = to_epoch_us(ts_raw)
    except (ValueError, TypeError, OverflowError, OSError, AttributeError):
        return f"unparseable @timestamp {str(ts_raw)[:64]!r}"
    ingested_raw = lookup(doc, _INGESTED)
    if ingested_raw is None:
        ingested_raw = get(doc, "event.ingested")  # honours a flat "event.ingested" key
    ingested: int | None = None
    if ingested_raw is not None:
        try:
            ingested = to_epoch_us(ingested_raw)
        except (ValueError, TypeError, OverflowError, OSError, AttributeError):
            return f"unparseable event.ingested {str(ingested_raw)[:64]!r}"
    return Prepared(position, eid, ts, ingested, doc)


def encode_cursor(payload: list[Any]) -> str:
    """An opaque, URL-safe page cursor."""
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """Inverse of :func:`encode_cursor`; a malformed cursor is a ``ValueError``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, UnicodeError, json.JSONDecodeError) as exc:
        raise ValueError("malformed cursor") from exc
    if not isinstance(payload, list):
        raise ValueError("malformed cursor")
    return payload
