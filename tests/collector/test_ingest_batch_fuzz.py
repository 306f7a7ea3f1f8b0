"""Property tests of the NDJSON batch parser: any bytes in, never an exception, good lines kept."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ingest.batch import BadEncoding, BodyTooLarge, gunzip_limited, parse_ndjson

good_event = st.builds(
    lambda i, msg: {"event": {"id": f"id-{i}"}, "message": msg},
    st.integers(min_value=0, max_value=10**9),
    st.text(max_size=40),
)
bad_line = st.one_of(
    st.binary(max_size=60).filter(lambda b: b"\n" not in b and b.strip() != b""),
    st.just(b"[1,2]"),
    st.just(b'{"event": {}}'),
    st.just(b'{"event": {"id": ""}}'),
    st.just(b"null"),
    st.just(b"[" * 100_000),
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_never_crash(body: bytes) -> None:
    batch = parse_ndjson(body)
    assert len(batch.events) == len(batch.indexes)
    lines = [line for line in body.split(b"\n") if line.strip()]
    assert len(batch.events) + len(batch.rejected) == len(lines)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(good_event.map(lambda e: ("good", e)), bad_line.map(lambda b: ("bad", b))), max_size=30))
def test_good_lines_around_bad_ones_are_kept_with_indexes(items: list[tuple[str, object]]) -> None:
    body = b"\n".join(json.dumps(x).encode() if kind == "good" else x for kind, x in items)  # type: ignore[misc]
    batch = parse_ndjson(body)
    expected_good = [i for i, (kind, _) in enumerate(items) if kind == "good"]
    # A random "bad" byte string can happen to be a valid event; every good one must survive.
    assert set(expected_good) <= set(batch.indexes)
    for index, event in zip(batch.indexes, batch.events, strict=True):
        if items[index][0] == "good":
            assert event == items[index][1]
    assert sorted(batch.indexes + [i for i, _ in batch.rejected]) == list(range(len(items)))


def test_gunzip_limits() -> None:
    assert gunzip_limited(gzip.compress(b"abc"), 10) == b"abc"
    with pytest.raises(BodyTooLarge):
        gunzip_limited(gzip.compress(b"a" * 1000), 999)
    with pytest.raises(BadEncoding):
        gunzip_limited(b"not gzip", 100)
    with pytest.raises(BadEncoding):
        gunzip_limited(gzip.compress(b"a" * 1000)[:-12], 10_000)
