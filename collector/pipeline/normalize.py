"""Make every event well-formed before anything else looks at it.

Receivers are many and agents are of many versions; rather than trust each, the collector
guarantees the invariants of docs/event-model.md here: ``@timestamp`` in canonical UTC form,
``event.id``, ``ecs.version``, ``event.kind``, ``event.ingested``, no half-flattened dotted keys at the
top level, ``tags`` a list, and no string so large it would bloat the store. Problems are tagged,
never fatal.

Clock trouble is made visible here too, without changing the time the source claimed: an event
stamped more than ``future_tolerance_s`` after ``event.ingested`` (a source clock running ahead) is
tagged ``clock_skew``, one older than ``lateness_s`` is tagged ``late_arrival``; both carry
``soc.clock_skew_s`` (``@timestamp - event.ingested``, seconds, negative when late).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.pipeline.base import Processor
from soc_common.ecs import ECS_VERSION, Event, add_tag, iso, parse_ts, put, stable_event_id
from soc_common.parsers.json_codec import HAS_ORJSON, dumps, dumps_bytes

_CANONICAL_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_is_canonical = _CANONICAL_TS.match
_CENTURY_S = 100 * 365 * 86400.0
EVENT_KINDS = frozenset({"alert", "asset", "enrichment", "event", "metric", "state", "pipeline_error", "signal"})


class SizedBatch(list[Event]):
    """A batch that knows no string in it is longer than ``longest`` characters.

    The agent ingest builds one from its NDJSON body (a decoded JSON string is never longer than
    the line it came from), so :class:`Normalize` can skip its per-event size check, which costs
    about as much as encoding the event. Anything that adds a longer string must raise ``longest``.
    """

    longest: int = 0


class Normalize(Processor):
    name = "normalize"

    def __init__(
        self,
        max_field_chars: int = 32768,
        future_tolerance_s: float = 300.0,
        lateness_s: float = 86400.0,
    ) -> None:
        self.max_field_chars = max_field_chars
        # capped at a century: "never" must not push now +/- window out of datetime's range
        self.future_tolerance = timedelta(seconds=min(future_tolerance_s, _CENTURY_S))
        self.lateness = timedelta(seconds=min(lateness_s, _CENTURY_S))
        self.errors = 0
        self.skewed = 0  # events tagged clock_skew
        self.late = 0  # events tagged late_arrival

    def process(self, events: list[Event]) -> list[Event]:
        now = datetime.now(UTC)
        ingested = iso(now)
        # Canonical timestamps sort as strings, so the per-event test is two string comparisons;
        # only the rare out-of-window event pays for a parse.
        newest, oldest = iso(now + self.future_tolerance), iso(now - self.lateness)
        # A batch that vouches for its string lengths spares every event the size check.
        check_size = not (type(events) is SizedBatch and events.longest <= self.max_field_chars)
        one = self._one
        for event in events:
            try:
                one(event, ingested, check_size)
                ts = event["@timestamp"]
                if ts > newest or ts < oldest:
                    self._flag_clock(event, ts, now)
            except (RecursionError, ValueError, TypeError) as exc:  # absurd nesting, odd types
                self.errors += 1
                add_tag(event, "normalize_error")
                put(event, "soc.parse_error", f"normalize: {type(exc).__name__}")
                if isinstance(event.get("event"), dict):
                    event["event"]["ingested"] = ingested
        return events

    def _flag_clock(self, event: Event, ts: str, now: datetime) -> None:
        try:
            offset = (parse_ts(ts) - now).total_seconds()
        except (ValueError, OverflowError):  # canonical shape, impossible date (month 13)
            return
        if offset > 0:
            self.skewed += 1
            add_tag(event, "clock_skew")
        else:
            self.late += 1
            add_tag(event, "late_arrival")
        put(event, "soc.clock_skew_s", round(offset, 3))

    def _one(self, event: Event, ingested: str, check_size: bool = True) -> None:
        for key in event:
            if "." in key:  # ("@timestamp" has no dot)
                _unflatten_top(event)
                break
        tags = event.get("tags")
        if type(tags) is not list and "tags" in event:
            _listify_tags(event, tags)
        ev = event.get("event")
        if type(ev) is not dict and not isinstance(ev, dict):
            bad = event.pop("event", None)
            ev = event["event"] = {}
            if bad is not None:
                add_tag(event, "malformed_event_field")
                ev["original"] = str(bad)[: self.max_field_chars]
        event_id = ev.get("id")
        if not event_id:
            ev["id"] = stable_event_id("content", json.dumps(event, sort_keys=True, default=str))
            add_tag(event, "event_id_assigned")
        elif type(event_id) is not str and not isinstance(event_id, str):
            ev["id"] = str(event_id)
        ts = event.get("@timestamp")
        if not (type(ts) is str and _is_canonical(ts)):
            try:
                if ts is None or isinstance(ts, bool):
                    raise ValueError("missing")
                event["@timestamp"] = iso(parse_ts(ts))
            except (ValueError, TypeError, OverflowError, OSError):
                event["@timestamp"] = ingested
                add_tag(event, "timestamp_missing" if ts is None else "timestamp_invalid")
                if ts is not None:
                    put(event, "soc.original_timestamp", str(ts)[:200])
        ecs = event.get("ecs")
        if not isinstance(ecs, dict):
            event["ecs"] = {"version": ECS_VERSION}
        elif not ecs.get("version"):
            ecs["version"] = ECS_VERSION
        kind = ev.get("kind")
        if kind is None:
            ev["kind"] = "event"
        elif kind not in EVENT_KINDS:
            add_tag(event, "event_kind_invalid")
        ev["ingested"] = ingested
        if not check_size or _surely_short(event, self.max_field_chars):
            return
        tags = event.get("tags")
        keep = (
            event["@timestamp"],
            ev["id"],
            list(tags) if isinstance(tags, list) else tags,
        )  # identity, time, tags are never cut
        if _truncate(event, self.max_field_chars):
            event["@timestamp"], ev["id"] = keep[0], keep[1]
            if keep[2] is not None:
                event["tags"] = keep[2]
            add_tag(event, "truncated")


def _surely_short(event: Event, limit: int) -> bool:
    """True when no string in ``event`` can be longer than ``limit`` characters.

    A string of n characters takes at least n bytes of its document's JSON, so a document whose
    JSON is at most ``limit`` bytes needs no walk. With orjson that encoding costs a fraction of the
    walk (nearly every event is far below the limit); with the standard library it costs more than
    the walk, so the walk always runs.
    """
    if not HAS_ORJSON:
        return False
    try:
        return len(dumps_bytes(event)) <= limit
    except (TypeError, ValueError, RecursionError, OverflowError):
        return False


def _listify_tags(event: Event, tags: Any) -> None:
    """``tags`` as the list every later step appends to: ``"x"`` -> ``["x"]``; ``null`` dropped.

    A string here used to make the first tag added (``late_arrival``, ``intel_match``) raise, which
    cost the rest of its batch that processor's work.
    """
    if tags is None:
        del event["tags"]
    elif isinstance(tags, list):
        event["tags"] = list(tags)
    else:
        event["tags"] = [tags if isinstance(tags, str) else dumps(tags)]


def _unflatten_top(event: Event) -> None:
    for key in [k for k in event if "." in k and k != "@timestamp"]:
        value = event.pop(key)
        put(event, key, value)


_LEAVES = frozenset({int, float, bool, type(None)})


def _truncate(node: Any, limit: int) -> bool:
    """Cut strings longer than ``limit`` in place; True if anything was cut.

    Runs on every value of every event, so leaves are classified by exact type first (plain ``str``
    and numbers are nearly everything, and ``type(x) is`` is several times cheaper than
    ``isinstance``); subclasses still take the ``isinstance`` route. Replacing the value of an
    existing key does not resize a dict, so it is edited while iterated, without a copy.
    """
    if isinstance(node, dict):
        slots: Any = node.items()
    elif isinstance(node, list):
        slots = enumerate(node)
    else:
        return False
    cut = False
    for slot, value in slots:
        kind = type(value)
        if kind in _LEAVES:
            continue
        if kind is str or isinstance(value, str):
            if len(value) > limit:
                node[slot] = value[:limit]
                cut = True
        elif value and _truncate(value, limit):
            cut = True
    return cut
