"""Hot-path shortcuts in the parsers and the JSON codec agree with the general code they bypass."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soc_common.parsers import json_codec, parse_line
from soc_common.parsers.authlog import normalize_ip
from soc_common.parsers.common import ParseOptions
from soc_common.parsers.syslog import parse_syslog


def _reference_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


_OCTET = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "010", "", "a", "٣", "+1", " 1"]))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(_OCTET, min_size=3, max_size=5).map(".".join), st.sampled_from(["::1", "fe80::1%eth0"])))
def test_normalize_ip_matches_ipaddress(text: str) -> None:
    assert normalize_ip(text) == _reference_ip(text)


def test_repeated_syslog_timestamps_come_from_the_cache_unchanged() -> None:
    opts = ParseOptions(default_year=2024, tz=UTC)
    first = parse_syslog("Mar  3 10:01:02 host sshd[1]: hello", opts)
    again = parse_syslog("Mar  3 10:01:02 host sshd[2]: hello again", opts)
    fraction = parse_syslog("Mar  3 10:01:02.250 host sshd[3]: x", opts)
    assert first["@timestamp"] == again["@timestamp"] == "2024-03-03T10:01:02.000Z"
    assert fraction["@timestamp"] == "2024-03-03T10:01:02.250Z"
    other_year = parse_syslog("Mar  3 10:01:02 host sshd[1]: hello", ParseOptions(default_year=2023, tz=UTC))
    assert other_year["@timestamp"] == "2023-03-03T10:01:02.000Z"


def test_auth_line_with_ipv6_and_ipv4_sources() -> None:
    v4 = parse_line("Mar  3 10:01:02 h sshd[1]: Failed password for root from 203.0.113.9 port 22 ssh2", "authlog")
    v6 = parse_line("Mar  3 10:01:02 h sshd[1]: Failed password for root from 2001:DB8::1 port 22 ssh2", "authlog")
    assert v4["source"]["ip"] == "203.0.113.9"
    assert v6["source"]["ip"] == "2001:db8::1"


class _Key(str):
    """A str subclass as a dict key (an enum-like key from a parser)."""


@dataclasses.dataclass
class _Point:
    x: int


_SAMPLES: list[Any] = [
    {"a": "ư tiếng Việt", "n": 1, "f": 1.5, "b": True, "none": None, "l": [1, "x", {"y": []}]},
    {"big": 1 << 70, "neg": -(1 << 65)},
    {1: "int key", "t": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "s": {3}},
    {"dc": _Point(1), "tuple": (1, 2)},
    {"lone": "\udc80"},
    {"deep": {"x": [{None: 1, True: 2, 2.5: 3, -7: 4}]}, "after": "kept"},
    {_Key("subclass"): 1, "plain": 2},
]


@pytest.mark.parametrize("value", _SAMPLES)
def test_dumps_matches_the_standard_library(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    assert json_codec.dumps(value) == expected
    assert json_codec.dumps_bytes(value) == expected.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1,"b":[true,null,"\\u00e9"]}',
        b'{"n":NaN,"i":-Infinity}',
        b'{"big":123456789012345678901234567890,"neg":-9223372036854775809}',
        b'{"id":"1234567890123456789012"}',
        '{"s":"ư"}',
    ],
)
def test_loads_matches_the_standard_library(text: bytes | str) -> None:
    got, expected = json_codec.loads(text), json.loads(text)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize("text", [b"{", b'{"a":}', b"\xff", b""])
def test_loads_rejects_what_the_standard_library_rejects(text: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        json_codec.loads(text)
