"""The hunting query syntax and its translation to the event-store filters."""

from __future__ import annotations

import pytest

from collector.store.base import Exists, Not, Range, Term
from soc_api.web.hunt_query import QueryError, parse


def test_terms_quotes_negation_ranges_lists_and_exists() -> None:
    q = parse('host.name:pc-01 event.action:"logon failed" -event.outcome:success '
              "destination.port>=1024 source.port<2000 event.code:4624,4625 _exists_:user.name")  # fmt: skip
    assert q.filters == (
        Term("host.name", "pc-01"),
        Term("event.action", "logon failed"),
        Not(Term("event.outcome", "success")),
        Range("destination.port", gte=1024),
        Range("source.port", lt=2000),
        Term("event.code", [4624, 4625]),
        Exists("user.name"),
    )
    assert parse("").filters == ()


@pytest.mark.parametrize("bad", ['host.name:"open', "justaword", "host.name:", "a b:c", "x>5", "bad field!:1"])
def test_malformed_queries_are_reported(bad: str) -> None:
    with pytest.raises(QueryError):
        parse(bad)


def test_too_many_terms_are_refused() -> None:
    with pytest.raises(QueryError):
        parse(" ".join(f"f{i}:v" for i in range(30)))
