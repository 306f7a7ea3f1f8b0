"""The agent-batch hot path: one long-number scan per body, size-vouching batches, bounded memos."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ingest.batch import parse_ndjson, stamp_agent
from collector.pipeline.cidr import MEMO_ENTRIES, CidrMap
from collector.pipeline.normalize import Normalize, SizedBatch
from collector.pipeline.related import _SHAPES_MAX, Related
from soc_common.ecs import Event, new_event
from soc_common.parsers.json_codec import has_long_number, long_number_offsets


def _line(event_id: str, **fields: object) -> bytes:
    event = new_event(dataset="system.auth", event_id=event_id)
    event.update(fields)
    return json.dumps(event).encode()


def test_big_integer_in_one_line_stays_exact_and_the_rest_still_parse() -> None:
    big = 123456789012345678901234567890
    body = b"\n".join([_line("a"), _line("b", process={"pid": big}), b"{broken", _line("c")]) + b"\n"
    assert has_long_number(body)
    batch = parse_ndjson(body)
    assert [e["event"]["id"] for e in batch.events] == ["a", "b", "c"]
    assert batch.events[1]["process"]["pid"] == big  # an int, not a float that lost digits
    assert batch.indexes == [0, 1, 3]
    assert [i for i, _ in batch.rejected] == [2]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 3), st.sampled_from(["", " ", "\r"])), min_size=1, max_size=12))
def test_only_lines_with_long_numbers_are_decoded_carefully_and_all_exactly(
    shape: list[tuple[bool, int, str]],
) -> None:
    """Whatever lines carry big integers (and wherever blank lines fall), every value comes out exact."""
    lines = []
    for n, (big, blanks, pad) in enumerate(shape):
        value = 10**25 + n if big else n
        lines += [pad * 2] * blanks + [f'{pad}{{"event":{{"id":"e{n}"}},"n":{value}}}{pad}']
    body = "\n".join(lines).encode()
    batch = parse_ndjson(body)
    assert [e["n"] for e in batch.events] == [10**25 + n if big else n for n, (big, _, _) in enumerate(shape)]
    assert all(type(e["n"]) is int for e in batch.events)
    assert batch.indexes == list(range(len(shape))) and not batch.rejected


def test_long_number_scan() -> None:
    assert not has_long_number(b'{"a":123456789012345678}')  # 18 digits: within 64 bits
    assert has_long_number(b"x1234567890123456789y")
    assert has_long_number("ts 1234567890123456789 \u00e9")
    assert not has_long_number("12345-67890-12345-6789")
    assert long_number_offsets(b"a1234567890123456789b\n" + b"9" * 30) == [1, 22]
    assert long_number_offsets(b"12345678901234567") == []


def test_batch_vouches_for_its_longest_line_and_stamping_raises_it() -> None:
    lines = [_line("a"), _line("b", message="m" * 500)]
    batch = parse_ndjson(b"\n".join(lines) + b"\n")
    assert type(batch.events) is SizedBatch
    assert batch.events.longest == max(len(x) for x in lines)
    stamp_agent(batch.events, "agent-1", "s" * 5000)
    assert batch.events.longest == 5000
    assert all(e["soc"] == {"agent_id": "agent-1", "site": "s" * 5000} for e in batch.events)


def test_stamp_overwrites_what_the_agent_claimed() -> None:
    events: list[Event] = [{"soc": {"agent_id": "forged", "site": "elsewhere", "zone": "z"}}, {"soc": "junk"}, {}]
    stamp_agent(events, "agent-7", "")
    assert events == [
        {"soc": {"agent_id": "agent-7", "site": "elsewhere", "zone": "z"}},
        {"soc": {"agent_id": "agent-7"}},
        {"soc": {"agent_id": "agent-7"}},
    ]


def test_long_line_still_truncated_through_parse_and_normalize() -> None:
    limit = 1000
    batch = parse_ndjson(b"\n".join([_line("short"), _line("long", message="x" * 5000)]))
    out = Normalize(max_field_chars=limit).process(batch.events)
    assert "truncated" not in out[0].get("tags", [])
    assert len(out[1]["message"]) == limit and "truncated" in out[1]["tags"]


def test_sized_batch_gives_the_same_documents_as_a_plain_list() -> None:
    lines = [_line(str(i), message="é" * (i * 37 % 900), user={"name": f"u{i}"}) for i in range(50)]
    body = b"\n".join(lines)
    sized = parse_ndjson(body).events
    plain = list(parse_ndjson(body).events)
    assert type(sized) is SizedBatch and type(plain) is list
    normalize = Normalize(max_field_chars=1000)
    a, b = normalize.process(sized), normalize.process(plain)
    for x, y in zip(a, b, strict=True):
        x["event"].pop("ingested"), y["event"].pop("ingested")
    assert a == b


def test_related_shape_plans_are_bounded() -> None:
    related = Related()
    events = [{"event": {"id": str(i)}, f"k{i}": 1, "source": {"ip": "10.0.0.1"}} for i in range(_SHAPES_MAX + 10)]
    related.process(events)
    assert 0 < len(related._plans) <= _SHAPES_MAX
    assert all(e["related"] == {"ip": ["10.0.0.1"]} for e in events)


def test_cidr_memo_is_bounded_and_still_right() -> None:
    zones = CidrMap([("10.0.0.0/8", "wan"), ("10.1.0.0/16", "hn")])
    for i in range(MEMO_ENTRIES + 100):
        assert zones.lookup(f"10.{1 + i % 2}.{i // 256 % 256}.{i % 256}") == ("hn" if i % 2 == 0 else "wan")
    info = zones.lookup.cache_info()
    assert info.maxsize == MEMO_ENTRIES and info.currsize <= MEMO_ENTRIES


def test_string_tags_no_longer_break_the_rest_of_the_batch() -> None:
    events: list[Event] = [
        {"@timestamp": "2001-01-01T00:00:00.000Z", "event": {"id": "1"}, "tags": "imported"},
        {"@timestamp": "2001-01-01T00:00:00.000Z", "event": {"id": "2"}, "tags": None},
        {"@timestamp": "2001-01-01T00:00:00.000Z", "event": {"id": "3"}, "tags": {"a": 1}},
        {"@timestamp": "2001-01-01T00:00:00.000Z", "event": {"id": "4"}},
    ]
    out = Normalize().process(events)
    assert [e["tags"] for e in out] == [
        ["imported", "late_arrival"],
        ["late_arrival"],
        ['{"a":1}', "late_arrival"],
        ["late_arrival"],
    ]
    assert all("ingested" in e["event"] for e in out)
