"""The collector's hot-path shortcuts give the same results as the plain code they replace."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ingest.batch import parse_ndjson
from collector.pipeline.fields import dig, path, place, strings
from collector.pipeline.normalize import Normalize
from collector.pipeline.related import (
    HASH_KINDS,
    HASH_OWNERS,
    HOST_FIELDS,
    IP_FIELDS,
    SYSMON_HASHES,
    USER_FIELDS,
    Related,
)
from soc_common.ecs import Event, iso


def reference_related(event: Event) -> dict[str, list[str]]:
    """``related.*`` computed the obvious way: every candidate field read in declared order."""
    found: dict[str, list[str]] = {}

    def add(kind: str, value: str) -> None:
        values = found.setdefault(kind, [])
        if value and value not in values:
            values.append(value)

    existing = event.get("related")
    if isinstance(existing, dict):
        for kind, values in existing.items():
            found[kind] = list(values) if isinstance(values, list) else strings(values)
    for parts in IP_FIELDS:
        for ip in strings(dig(event, parts)):
            add("ip", ip)
    for parts in USER_FIELDS:
        if isinstance(value := dig(event, parts), str):
            add("user", value)
    for parts in HOST_FIELDS:
        if isinstance(value := dig(event, parts), str):
            add("hosts", value.lower().rstrip("."))
    for parts in HASH_OWNERS:
        if isinstance(hashes := dig(event, parts), dict):
            for kind in HASH_KINDS:
                if isinstance(value := hashes.get(kind), str):
                    add("hash", value.lower())
    if isinstance(sysmon := dig(event, SYSMON_HASHES), str):
        for part in sysmon.split(","):
            _, sep, value = part.partition("=")
            if sep:
                add("hash", value.strip().lower())
    return found


_CANDIDATES = [*IP_FIELDS, *USER_FIELDS, *HOST_FIELDS, SYSMON_HASHES, path("related.ip"), path("related.user")]
_VALUES = st.one_of(
    st.sampled_from(["10.0.0.1", "10.0.0.2", "Alice", "alice", "Host.Example.", "", "SHA1=AB,MD5=cd", "x"]),
    st.lists(st.sampled_from(["10.0.0.1", "10.0.0.3", "y"]), max_size=3),
    st.integers(0, 3),
    st.none(),
    st.fixed_dictionaries({}, optional={k: st.sampled_from(["AA", "bb", "AA"]) for k in HASH_KINDS}),
)


@st.composite
def candidate_events(draw: st.DrawFn) -> Event:
    event: Event = {}
    for parts in draw(st.lists(st.sampled_from(_CANDIDATES + list(HASH_OWNERS)), max_size=10)):
        value = draw(_VALUES)
        node: Any = event
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[parts[-1]] = value
    return event


@settings(max_examples=300, deadline=None)
@given(candidate_events())
def test_related_matches_the_reference_in_content_and_order(event: Event) -> None:
    expected = reference_related(json.loads(json.dumps(event)))
    [out] = Related().process([event])
    assert out.get("related", {}) == expected


def test_normalize_still_truncates_long_strings_and_leaves_short_events_alone() -> None:
    normalize = Normalize(max_field_chars=50)
    now = iso(datetime.now(UTC))  # a current time: a skewed one would add a clock tag of its own
    long_event: Event = {
        "@timestamp": now,
        "event": {"id": "a"},
        "message": "m" * 80,
        "nested": {"deep": ["x" * 60, 1, None]},
        "tags": ["keep"],
    }
    short_event: Event = {"@timestamp": now, "event": {"id": "b"}, "message": "short"}
    out_long, out_short = normalize.process([long_event, short_event])
    assert out_long["message"] == "m" * 50
    assert out_long["nested"]["deep"] == ["x" * 50, 1, None]
    assert out_long["tags"] == ["keep", "truncated"]
    assert out_short["message"] == "short" and "tags" not in out_short


def test_normalize_truncates_strings_in_str_subclasses_and_nested_lists() -> None:
    class Text(str):
        pass

    event: Event = {"@timestamp": "2024-06-01T00:00:00.000Z", "event": {"id": "a"}, "a": [[Text("z" * 70)]]}
    [out] = Normalize(max_field_chars=20).process([event])
    assert out["a"] == [["z" * 20]]


def test_parse_ndjson_accepts_what_the_standard_library_accepts() -> None:
    body = b"\n".join(
        [
            b'{"event":{"id":"a"},"n":NaN}',  # not strict JSON, accepted by the stdlib decoder
            b'{"event":{"id":"b"},"big":123456789012345678901234567890}',  # beyond 64 bits
            b'{"event.id":"c"}',  # half-flattened id
            b'{"event":{"id":true}}',
            b"[1,2]",
            b'{"event":{"id":"d"},"s":"\xff"}',  # invalid UTF-8
            b"",
            b'{"event":{"id":7}}',
        ]
    )
    batch = parse_ndjson(body)
    assert [e.get("event", {}).get("id", e.get("event.id")) for e in batch.events] == ["a", "b", "c", 7]
    assert batch.events[1]["big"] == 123456789012345678901234567890
    assert batch.indexes == [0, 1, 2, 6]
    assert [i for i, _ in batch.rejected] == [3, 4, 5]
    assert batch.rejected[0][1] == "no event.id" and batch.rejected[1][1] == "not a JSON object"
    assert batch.rejected[2][1].startswith("invalid JSON")


def test_place_replaces_non_objects_on_the_way() -> None:
    event: Event = {"soc": "junk"}
    place(event, path("soc.agent_id"), "a1")
    place(event, path("soc.site"), "hn")
    assert event == {"soc": {"agent_id": "a1", "site": "hn"}}
