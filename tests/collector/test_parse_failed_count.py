"""The pipeline's count of events carrying ``soc.parse_error`` agrees with the general dotted lookup
in every shape a receiver may hand it (its shortcuts skip that lookup for the common shapes)."""

from __future__ import annotations

from typing import Any

import pytest

from collector.pipeline.runner import _count_parse_failed
from soc_common.ecs import get

_SHAPES: list[dict[str, Any]] = [
    {"message": "no soc at all"},
    {"soc": {"site": "hn"}},
    {"soc": {"parse_error": "cef: bad header"}},
    {"soc.parse_error": "flat key, as an agent may send before Normalize"},
    {"soc": None, "soc.parse_error": "flat key beside a null soc"},
    {"soc": "not an object"},
    {"soc": {"parse_error": None}},
    {"soc": {"parse_error": ""}},
]


@pytest.mark.parametrize("event", _SHAPES)
def test_each_shape_is_counted_as_the_dotted_lookup_reads_it(event: dict[str, Any]) -> None:
    assert _count_parse_failed([event]) == (get(event, "soc.parse_error") is not None)


def test_a_mixed_batch_counts_each_failure_once() -> None:
    assert _count_parse_failed(_SHAPES * 3) == 3 * 3  # nested, flat, empty-string error
