"""Normalize makes clock trouble visible: future timestamps tagged ``clock_skew``, very old ones ``late_arrival``.

The source's own time is never changed (an analyst needs it to line events up with the host's logs);
the tag and ``soc.clock_skew_s`` say how far off it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.pipeline.normalize import Normalize
from soc_common.ecs import Event, get, iso, new_event, parse_ts


def _event(offset: timedelta, event_id: str = "e1") -> Event:
    event = new_event(dataset="system.auth", event_id=event_id)
    event["@timestamp"] = iso(datetime.now(UTC) + offset)
    return event


@pytest.mark.parametrize(
    ("offset", "tag"),
    [(timedelta(hours=1), "clock_skew"), (timedelta(days=-2), "late_arrival"), (timedelta(minutes=6), "clock_skew")],
)
def test_out_of_window_events_are_tagged_and_keep_their_time(offset: timedelta, tag: str) -> None:
    event = _event(offset)
    claimed = event["@timestamp"]
    [out] = Normalize().process([event])
    assert out["@timestamp"] == claimed
    assert tag in out["tags"]
    skew = get(out, "soc.clock_skew_s")
    ingested = parse_ts(get(out, "event.ingested"))
    assert abs(skew - (parse_ts(claimed) - ingested).total_seconds()) < 1.0
    assert (skew > 0) == (tag == "clock_skew")


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(minutes=4), timedelta(hours=-23), timedelta(seconds=-5)])
def test_events_inside_the_window_are_left_alone(offset: timedelta) -> None:
    [out] = Normalize().process([_event(offset)])
    assert "tags" not in out or not {"clock_skew", "late_arrival"} & set(out["tags"])
    assert get(out, "soc.clock_skew_s") is None


def test_tolerances_are_configurable_and_counted() -> None:
    normalize = Normalize(future_tolerance_s=10, lateness_s=60)
    events = [_event(timedelta(seconds=30), "a"), _event(timedelta(seconds=-120), "b"), _event(timedelta(0), "c")]
    out = normalize.process(events)
    assert [sorted({"clock_skew", "late_arrival"} & set(e.get("tags", []))) for e in out] == [
        ["clock_skew"],
        ["late_arrival"],
        [],
    ]
    assert (normalize.skewed, normalize.late) == (1, 1)


def test_non_canonical_and_odd_timestamps_are_checked_after_canonicalisation() -> None:
    future = datetime.now(UTC) + timedelta(hours=2)
    events: list[Event] = [
        {"event": {"id": "epoch"}, "@timestamp": future.timestamp()},  # epoch seconds
        {"event": {"id": "offset"}, "@timestamp": future.astimezone().isoformat()},  # local offset form
        {"event": {"id": "junk"}, "@timestamp": "not a time"},  # replaced by ingest time: not skewed
        {"event": {"id": "month13"}, "@timestamp": "2026-13-01T00:00:00.000Z"},  # canonical shape, no date
    ]
    out = Normalize().process(events)
    assert "clock_skew" in out[0]["tags"] and "clock_skew" in out[1]["tags"]
    assert "clock_skew" not in out[2]["tags"] and "timestamp_invalid" in out[2]["tags"]
    assert "normalize_error" not in out[3].get("tags", [])
    assert get(out[3], "soc.clock_skew_s") is None


def test_a_window_of_never_is_accepted() -> None:
    """An operator who wants no late_arrival tags sets a huge lateness; it must not overflow."""
    old = _event(timedelta(days=-3650))
    [out] = Normalize(future_tolerance_s=float("inf"), lateness_s=1e12).process([old])
    assert "tags" not in out
