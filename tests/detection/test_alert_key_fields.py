"""Alert key fields read in one walk give what ``soc_common.ecs.get`` gives path by path."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detection.alerts import KEY_FIELDS, MAX_FIELD_CHARS, _attack_of, attack_from_tags, key_fields
from soc_common.ecs import get


def _reference(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in KEY_FIELDS:
        value = get(event, path)
        if value is None:
            continue
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            value = value[:MAX_FIELD_CHARS] + "…"
        out[path] = value
    return out


# Keys that build KEY_FIELDS paths nested, half-flattened or wrong-typed.
KEYS = ["winlog", "event_data", "Image", "event_data.Image", "winlog.event_data.Image", "host", "name",
        "host.name", "event", "code", "source", "ip", "source.ip", "@timestamp", "message", "x"]  # fmt: skip
values = st.one_of(st.none(), st.text(max_size=3), st.integers(), st.just("y" * (MAX_FIELD_CHARS + 5)))
trees = st.recursive(values, lambda c: st.dictionaries(st.sampled_from(KEYS), c, max_size=4), max_leaves=15)


@settings(max_examples=500, deadline=None)
@given(event=st.dictionaries(st.sampled_from(KEYS), trees, max_size=6))
def test_key_fields_equal_path_by_path_lookup(event: dict[str, Any]) -> None:
    got = key_fields(event)
    expected = _reference(event)
    assert got == expected
    assert list(got) == list(expected)  # same order: alerts serialise it


def test_real_event_key_fields() -> None:
    event = {
        "@timestamp": "2024-01-01T00:00:00Z",
        "event": {"code": "1", "id": "abc"},
        "winlog": {"event_data": {"Image": "C:\\x.exe", "CommandLine": "x" * 2000}, "channel": "Security"},
        "host.name": "pc1",
    }
    fields = key_fields(event)
    assert fields["host.name"] == "pc1" and fields["event.code"] == "1"
    assert fields["winlog.event_data.CommandLine"].endswith("…")
    assert len(fields["winlog.event_data.CommandLine"]) == MAX_FIELD_CHARS + 1


def test_attack_tags_cached_per_rule_are_the_parsed_ones() -> None:
    tags = ("attack.t1110.001", "attack.credential_access", "attack.g0007", "cve.2021")
    tactics, techniques = attack_from_tags(tags)
    assert (list(_attack_of(tags)[0]), list(_attack_of(tags)[1])) == (tactics, techniques)
    assert tactics == ["credential-access"] and techniques == ["T1110.001"]
