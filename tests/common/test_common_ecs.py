"""The event model helpers every role relies on."""

from datetime import UTC, datetime, timedelta, timezone

from soc_common import ecs


def test_dotted_access_creates_and_reads_nested_fields() -> None:
    event: ecs.Event = {}
    ecs.put(event, "source.ip", "10.0.0.1")
    ecs.put(event, "source.port", 22)
    assert event == {"source": {"ip": "10.0.0.1", "port": 22}}
    assert ecs.get(event, "source.ip") == "10.0.0.1"
    assert ecs.get(event, "source.bytes", 0) == 0
    assert ecs.get(event, "source.ip.x") is None


def test_get_honours_half_flattened_documents() -> None:
    event = {"winlog": {"event_data.Image": "C:\\x.exe"}, "host.name": "pc-01"}
    assert ecs.get(event, "winlog.event_data.Image") == "C:\\x.exe"
    assert ecs.get(event, "host.name") == "pc-01"


def test_flatten_roundtrip_keeps_lists() -> None:
    event = {"event": {"category": ["network"], "id": "a"}, "tags": ["x"], "n": {"m": {"o": 1}}}
    flat = ecs.flatten(event)
    assert flat == {"event.category": ["network"], "event.id": "a", "tags": ["x"], "n.m.o": 1}
    assert ecs.unflatten(flat) == event


def test_setdefault_and_pop() -> None:
    event: ecs.Event = {"user": {"name": "an"}}
    assert ecs.setdefault(event, "user.name", "binh") == "an"
    assert ecs.setdefault(event, "user.domain", "LAB") == "LAB"
    assert ecs.pop(event, "user.domain") == "LAB"
    assert ecs.pop(event, "user.nothing", "d") == "d"
    assert ecs.pop(event, "missing.path") is None


def test_stable_ids_are_deterministic_and_distinct() -> None:
    a = ecs.stable_event_id("host", "/var/log/auth.log", 100)
    assert a == ecs.stable_event_id("host", "/var/log/auth.log", 100)
    assert a != ecs.stable_event_id("host", "/var/log/auth.log", 101)
    # part boundaries matter: ("ab", "c") is not ("a", "bc")
    assert ecs.stable_event_id("ab", "c") != ecs.stable_event_id("a", "bc")
    assert ecs.new_event_id() != ecs.new_event_id()


def test_timestamps_are_utc_iso_with_z() -> None:
    local = datetime(2026, 1, 29, 7, 0, 0, 123456, tzinfo=timezone(timedelta(hours=7)))
    assert ecs.iso(local) == "2026-01-29T00:00:00.123Z"
    assert ecs.parse_ts("2026-01-29T00:00:00.123Z") == datetime(2026, 1, 29, 0, 0, 0, 123000, tzinfo=UTC)
    assert ecs.parse_ts(1_700_000_000) == ecs.parse_ts(1_700_000_000_000)
    assert ecs.parse_ts("2026-01-29T00:00:00").tzinfo is not None


def test_new_event_carries_required_fields_and_helpers_dedupe() -> None:
    event = ecs.new_event(dataset="system.auth", original="line")
    assert event["event"]["dataset"] == "system.auth"
    assert event["event"]["original"] == "line"
    assert event["ecs"]["version"] == ecs.ECS_VERSION
    assert ecs.event_id(event) == event["event"]["id"]
    ecs.add_tag(event, "t")
    ecs.add_tag(event, "t")
    ecs.add_related(event, "ip", "10.0.0.1")
    ecs.add_related(event, "ip", "10.0.0.1")
    ecs.add_related(event, "ip", None)
    assert event["tags"] == ["t"]
    assert event["related"] == {"ip": ["10.0.0.1"]}
