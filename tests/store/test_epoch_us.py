"""``to_epoch_us``'s cached-second reading of canonical timestamps agrees with a full parse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.store import documents
from collector.store.documents import _parse_text_us, to_epoch_us
from soc_common.ecs import parse_ts

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reference(text: str) -> int:
    """The full parse, as every text took before the cached second."""
    return _parse_text_us(text)


def _fresh(text: str) -> int:
    documents._TEXT_US.clear()
    documents._SECOND_US.clear()
    return to_epoch_us(text)


@settings(max_examples=400, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_canonical_texts_read_as_a_full_parse_does(when: datetime) -> None:
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + f".{when.microsecond // 1000:03d}Z"
    if len(text) != 24:  # years before 1000 print short on some platforms
        return
    expected = (when.replace(tzinfo=UTC, microsecond=when.microsecond // 1000 * 1000) - _EPOCH) // timedelta(
        microseconds=1
    )
    assert _fresh(text) == expected == _reference(text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-06-01T00:00:01.+12Z",  # int() would read these three characters, a timestamp must not
        "2024-06-01T00:00:01. 12Z",
        "2024-06-01T00:00:01.1_2Z",
        "2024-06-01T00:00:01.١٢٣Z",  # digits, but not ASCII ones
        "2024-02-30T00:00:01.123Z",  # no such day
        "2024-06-01T24:00:01.123Z",
    ],
)
def test_near_canonical_texts_get_the_full_parse_answer(text: str) -> None:
    try:
        expected: int | type[Exception] = _reference(text)
    except ValueError:
        expected = ValueError
    if expected is ValueError:
        with pytest.raises(ValueError):
            _fresh(text)
    else:
        assert _fresh(text) == expected


def test_other_forms_still_parse() -> None:
    for text in ("2024-06-01T00:00:01Z", "2024-06-01T07:00:01.5+07:00", "2024-06-01T00:00:01.123456Z"):
        assert to_epoch_us(text) == (parse_ts(text) - _EPOCH) // timedelta(microseconds=1)
