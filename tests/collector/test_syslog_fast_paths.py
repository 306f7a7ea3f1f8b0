"""The syslog receiver's shortcuts agree with the general code they bypass.

Each fast path (bulk line framing, unescaped CEF header split, one-split CEF extensions, the
dotted-quad check, pre-split field paths) is compared with the general code on generated input.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from peers import wait_for

from collector.config import SyslogSettings
from collector.syslog import cef, server
from collector.syslog.fields import put_path, valid_ip
from collector.syslog.framing import Frame, StreamFramer
from collector.syslog.server import SyslogReceiver
from soc_common.ecs import Event, put


class _PerLineFramer(StreamFramer):
    """The general line-by-line code for every buffer, as before the bulk split."""

    def _all_lines(self, frames: list[Frame]) -> None:
        while self._next_line(frames):
            pass


def _frames(framer: StreamFramer, chunks: list[bytes]) -> list[tuple[bytes, bool]]:
    out = [f for chunk in chunks for f in framer.feed(chunk)] + framer.flush()
    return [(f.data, f.truncated) for f in out]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=80).map(lambda b: b.replace(b"\x00", b"")), max_size=12), st.integers(1, 40))
def test_bulk_line_framing_equals_line_by_line(chunks: list[bytes], max_bytes: int) -> None:
    chunks = [b"<13>" + chunks[0], *chunks[1:]] if chunks else chunks  # line framing, not octet counting
    assert _frames(StreamFramer(max_bytes), chunks) == _frames(_PerLineFramer(max_bytes), chunks)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"<13>ab", b"\n", b"\r\n", b"\x00", b"x" * 30, b"\r", b" "]), max_size=30), st.data())
def test_bulk_line_framing_with_delimiters_and_cuts(parts: list[bytes], data: st.DataObject) -> None:
    stream = b"<" + b"".join(parts)
    cut = data.draw(st.integers(0, len(stream)))
    chunks = [stream[:cut], stream[cut:]]
    assert _frames(StreamFramer(20), chunks) == _frames(_PerLineFramer(20), chunks)


def _reference_valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_OCTET = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "010", "", "a", "٣", "+1", " 1", "1\n"]))


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.lists(_OCTET, min_size=3, max_size=5).map(".".join),
        st.sampled_from(["::1", "fe80::1%eth0", "2001:db8::", "1:2", ":::", "::ffff:1.2.3.4", "1.2.3.4:80"]),
        st.text(max_size=20),
    )
)
def test_valid_ip_matches_ipaddress(text: str) -> None:
    assert valid_ip(text) is _reference_valid_ip(text)


_CEF_TEXT = st.text(alphabet="ab|\\= x", max_size=40)


@settings(max_examples=500, deadline=None)
@given(_CEF_TEXT)
def test_cef_header_split_equals_escaped_scan(body: str) -> None:
    text = "CEF:" + body
    try:
        want: Any = cef._split_escaped_header(text)
    except cef.CefError as exc:
        want = str(exc)
    try:
        got: Any = cef.split_header(text)
    except cef.CefError as exc:
        got = str(exc)
    assert got == want


_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]+)=")


def _reference_extension(text: str) -> dict[str, str]:
    """The earlier match-by-match reading of the extension."""
    matches = list(_KEY.finditer(text))
    out: dict[str, str] = {}
    for idx, match in enumerate(matches):
        end = matches[idx + 1].start() if idx + 1 < len(matches) else len(text)
        out[match.group(1)] = cef._unescape(text[match.end() : end].rstrip())
    return out


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab=\\ n\t.[]-1", max_size=60))
def test_cef_extension_split_equals_match_by_match(text: str) -> None:
    assert cef.parse_extension(text) == _reference_extension(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "a.b", "a.b.c", "b.c", "message", "a.x.y.z"]), st.integers())))
def test_put_path_equals_put(writes: list[tuple[str, int]]) -> None:
    want: Event = {"message": "m"}
    got: Event = {"message": "m"}
    for path, value in writes:
        put(want, path, value)
        put_path(got, tuple(path.split(".")), value)
    assert list(got.items()) == list(want.items()) and got == want


def test_udp_trickle_is_handed_over_without_waiting_for_a_full_burst(monkeypatch: Any) -> None:
    """Fewer datagrams than a burst still reach the pipeline promptly (the sender's pause ends the burst)."""
    monkeypatch.setattr(server, "UDP_HOLD", 0.05)
    got: list[Event] = []
    settings = SyslogSettings(enabled=True, udp_port=0, tcp_port=None, tls_port=None, batch_size=1, flush_interval=0.05)
    rx = SyslogReceiver(settings, got.extend)
    ports = rx.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(3):
                s.sendto(b"<13>Jan  1 00:00:00 h p: trickle %d" % i, ("127.0.0.1", ports["udp"]))
        started = time.monotonic()
        assert wait_for(lambda: len(got) == 3, timeout=5)
        assert time.monotonic() - started < 2
        assert [e["message"] for e in got] == ["trickle 0", "trickle 1", "trickle 2"]
        assert rx.stats()["received"] == 3
    finally:
        rx.stop()
