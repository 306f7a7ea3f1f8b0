"""The syslog parsers still make exactly the events they made before the speed work.

The golden fixture was generated from the earlier code over a varied corpus (RFC 3164/5424, CEF,
FortiGate, malformed, invalid UTF-8); the comparison includes key order, as the store keeps the
document as serialised.
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from syslog_corpus import GOLDEN, HCM, configurations, corpus, parse_all

from collector.syslog.message import MessageParser
from soc_common.parsers.common import ParseOptions
from soc_common.parsers.syslog import parse_syslog


def _golden() -> list[dict[str, Any]]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_corpus_is_the_one_the_golden_events_were_made_from() -> None:
    golden = _golden()
    lines = corpus()
    assert len(golden) == len(lines) * len(configurations())
    assert [base64.b64decode(row["raw"]) for row in golden[: len(lines)]] == lines


def test_events_identical_to_the_golden_fixture_including_key_order() -> None:
    golden = _golden()
    current = parse_all(corpus())
    mismatches = [
        (row["config"], base64.b64decode(row["raw"]), kind)
        for row, now in zip(golden, current, strict=True)
        for kind in ("receiver", "file_line")
        if json.dumps(row[kind], ensure_ascii=False) != json.dumps(now[kind], ensure_ascii=False)
    ]
    assert not mismatches, f"{len(mismatches)} differ, first: {mismatches[:3]}"


@pytest.mark.parametrize("tz", [HCM, UTC])
def test_cached_year_inference_matches_the_uncached_path(tz: Any) -> None:
    """Production parsing (no pinned clock, caches) equals parsing with the clock passed in."""
    lines = [raw for raw in corpus(400) if not raw.startswith(b"<134>CEF")]
    cached = MessageParser("UTC")
    cached.opts, cached.tz = ParseOptions(tz=tz), tz
    for _ in range(2):  # the second pass is served from the caches
        for raw in lines:
            now = datetime.now(UTC)
            got = cached.parse(raw, "10.0.0.1", 514)
            direct = MessageParser("UTC")
            direct.opts, direct.tz = ParseOptions(tz=tz, now=now), tz
            want = direct.parse(raw, "10.0.0.1", 514)
            got["event"]["id"] = want["event"]["id"]
            if got != want:  # differs only when the read time (no timestamp in the line) moved on
                assert abs(_ts(got) - _ts(want)) < timedelta(seconds=2), raw
                got["@timestamp"] = want["@timestamp"]
            assert json.dumps(got) == json.dumps(want), raw


def test_file_line_parser_cached_equals_pinned_clock() -> None:
    for raw in corpus(300):
        text = raw.decode("utf-8", "replace")
        now = datetime.now(UTC)
        got = parse_syslog(text, ParseOptions(tz=HCM))
        want = parse_syslog(text, ParseOptions(tz=HCM, now=now))
        if got["@timestamp"] != want["@timestamp"]:
            assert abs(_ts(got) - _ts(want)) < timedelta(seconds=2), raw
            got["@timestamp"] = want["@timestamp"]
        assert json.dumps(got) == json.dumps(want), raw


def _ts(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["@timestamp"])
