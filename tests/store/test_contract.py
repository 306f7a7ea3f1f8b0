"""The EventStore contract, run unchanged against every store (see conftest ``store``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.store.base import Aggregation, EventStore, Exists, Not, Query, Range, Term
from soc_common.ecs import iso
from tests.store.samples import BASE_TIME, make_event


def ids(events: list[dict]) -> list[str]:
    return [e["event"]["id"] for e in events]


def write_all(store: EventStore, events: list[dict]) -> None:
    result = store.write(events)
    assert result.errors == [] and result.stored == len(events)
    store.refresh()


def matching(store: EventStore, *filters: object, **kwargs: object) -> set[str]:
    page = store.search(Query(tuple(filters), **kwargs), size=1000)  # type: ignore[arg-type]
    assert page.total == len(page.events)
    return set(ids(page.events))


def test_write_is_idempotent_by_event_id(store: EventStore) -> None:
    batch = [make_event(i) for i in range(5)]
    first = store.write(batch)
    assert (first.stored, first.duplicates, first.errors) == (5, 0, [])
    again = store.write(batch)
    assert (again.stored, again.duplicates, again.errors) == (0, 5, [])
    store.refresh()
    assert store.count(Query()) == 5


def test_duplicates_inside_one_batch_are_counted(store: EventStore) -> None:
    a, b = make_event(1), make_event(2)
    result = store.write([a, b, dict(a), make_event(3), dict(b)])
    assert (result.stored, result.duplicates, result.errors) == (3, 2, [])
    store.refresh()
    assert store.count(Query()) == 3


def test_bad_documents_are_reported_and_the_rest_stored(store: EventStore) -> None:
    no_id = make_event(2)
    del no_id["event"]["id"]
    bad_ts = make_event(4)
    bad_ts["@timestamp"] = "yesterday-ish"
    no_ts = make_event(6)
    del no_ts["@timestamp"]
    batch = [make_event(1), no_id, make_event(3), bad_ts, "not an object", no_ts, make_event(7)]
    result = store.write(batch)  # type: ignore[arg-type]
    assert result.stored == 3 and result.duplicates == 0
    assert [pos for pos, _ in result.errors] == [1, 3, 4, 5]
    reasons = dict(result.errors)
    assert "event.id" in reasons[1] and "@timestamp" in reasons[3] and "@timestamp" in reasons[5]
    store.refresh()
    assert sorted(ids(store.get(["evt-00001", "evt-00003", "evt-00007", "evt-00004"]))) == [
        "evt-00001",
        "evt-00003",
        "evt-00007",
    ]


@pytest.fixture
def sample(store: EventStore) -> EventStore:
    events = [make_event(i) for i in range(10)]
    events[3]["process"] = {"name": "sshd", "pid": 812}
    events[4]["process"] = {"name": "sudo", "pid": 900}
    events[5]["event"]["category"] = ["authentication", "iam"]
    events[6]["host"]["name"] = "ws-07"
    events[7]["user"]["name"] = "root"
    del events[8]["source"]
    write_all(store, events)
    return store


def test_term_filters_on_scalar_and_array_fields(sample: EventStore) -> None:
    assert matching(sample, Term("host.name", "ws-07")) == {"evt-00006"}
    assert matching(sample, Term("user.name", ["root", "user1"])) == {"evt-00001", "evt-00004", "evt-00007"}
    assert matching(sample, Term("process.name", "sshd")) == {"evt-00003"}
    assert matching(sample, Term("process.name", ["sshd", "sudo"])) == {"evt-00003", "evt-00004"}
    assert matching(sample, Term("event.category", "iam")) == {"evt-00005"}
    assert matching(sample, Term("tags", "even")) == {f"evt-{i:05d}" for i in range(0, 10, 2)}
    assert matching(sample, Term("related.ip", "10.1.3.4")) == {"evt-00003"}
    assert len(matching(sample, Term("related.ip", "192.0.2.1"))) == 10  # evt-8 lost source, not related
    assert matching(sample, Term("event.outcome", "failure"), Term("user.name", "user0")) == {
        "evt-00003",
        "evt-00009",
    }
    assert matching(sample, Term("process.pid", 812)) == {"evt-00003"}
    assert matching(sample, Term("user.name", "ROOT")) == set()  # exact, case-sensitive
    assert matching(sample, Term("event.id", ["evt-00002", "nope"])) == {"evt-00002"}


def test_range_exists_and_not_filters(sample: EventStore) -> None:
    assert matching(sample, Range("source.port", gte=40003, lt=40006)) == {
        "evt-00003",
        "evt-00004",
        "evt-00005",
    }
    assert matching(sample, Range("source.port", gte=40008)) == {"evt-00009"}
    assert matching(sample, Range("@timestamp", gte=BASE_TIME + timedelta(seconds=8))) == {
        "evt-00008",
        "evt-00009",
    }
    assert matching(sample, Exists("process.name")) == {"evt-00003", "evt-00004"}
    assert len(matching(sample, Not(Exists("source.ip")))) == 1
    # Not also matches events that lack the field, as Elasticsearch's must_not does.
    assert len(matching(sample, Not(Term("process.name", "sshd")))) == 9
    assert matching(sample, Not(Term("user.name", ["user0", "user1", "user2"]))) == {"evt-00007"}
    assert len(matching(sample, Not(Range("source.port", lt=40005)))) == 5  # 5,6,7,9 and 8 (no port)


def test_time_range_on_timestamp_and_ingested(sample: EventStore) -> None:
    start, end = BASE_TIME + timedelta(seconds=2), BASE_TIME + timedelta(seconds=5)
    assert matching(sample, start=start, end=end) == {"evt-00002", "evt-00003", "evt-00004"}
    shifted = dict(start=start + timedelta(seconds=5), end=end + timedelta(seconds=5), time_field="event.ingested")
    assert matching(sample, **shifted) == {"evt-00002", "evt-00003", "evt-00004"}  # ingested = ts + 5 s
    assert sample.count(Query(start=start)) == 8
    assert sample.count(Query(end=start)) == 2


def test_paging_with_cursor_is_newest_first_without_gaps_or_repeats(store: EventStore) -> None:
    # Pairs of events share a timestamp so the event.id tie-break is exercised.
    events = [make_event(i, seconds=i // 2) for i in range(250)]
    for start in range(0, 250, 100):
        write_all(store, events[start : start + 100])
    seen: list[str] = []
    stamps: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.search(Query(), size=40, cursor=cursor)
        assert page.total == 250
        seen += ids(page.events)
        stamps += [e["@timestamp"] for e in page.events]
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert pages == 7
    assert len(seen) == len(set(seen)) == 250
    expected = sorted(events, key=lambda e: (e["@timestamp"], e["event"]["id"]), reverse=True)
    assert seen == ids(expected)
    assert stamps == sorted(stamps, reverse=True)


def test_filtered_paging_and_empty_results(sample: EventStore) -> None:
    first = sample.search(Query((Term("event.outcome", "success"),)), size=2)
    assert ids(first.events) == ["evt-00008", "evt-00006"] and first.total == 5
    second = sample.search(Query((Term("event.outcome", "success"),)), size=2, cursor=first.cursor)
    assert ids(second.events) == ["evt-00004", "evt-00002"]
    empty = sample.search(Query((Term("user.name", "nobody"),)))
    assert (empty.events, empty.total, empty.cursor) == ([], 0, None)
    with pytest.raises(ValueError):
        sample.search(Query(), cursor="%%% not a cursor")


def test_get_by_ids_and_count(sample: EventStore) -> None:
    got = sample.get(["evt-00007", "missing", "evt-00001"])
    assert ids(got) == ["evt-00007", "evt-00001"]
    assert got[0]["user"]["name"] == "root"
    assert sample.get([]) == []
    assert sample.count(Query()) == 10
    assert sample.count(Query((Term("event.outcome", "failure"),))) == 5


def test_terms_aggregation_with_per_bucket_metrics(sample: EventStore) -> None:
    users = sample.aggregate(Query(), Aggregation("terms", "user.name", size=2))
    assert [(b.key, b.count) for b in users] == [("user0", 4), ("user2", 3)]  # evt-7 is root, not user1
    ties = sample.aggregate(Query((Not(Term("user.name", "user0")),)), Aggregation("terms", "user.name", size=2))
    assert [(b.key, b.count) for b in ties] == [("user2", 3), ("user1", 2)]
    outcomes = sample.aggregate(Query(), Aggregation("terms", "event.outcome"))
    assert [(b.key, b.count) for b in outcomes] == [("failure", 5), ("success", 5)]  # equal counts: by key
    tags = sample.aggregate(Query(), Aggregation("terms", "tags"))
    assert [(b.key, b.count) for b in tags] == [("auth", 10), ("even", 5)]
    ports = sample.aggregate(Query(), Aggregation("terms", "event.outcome", metric="sum", metric_field="source.port"))
    assert {b.key: (b.count, b.value) for b in ports} == {
        "failure": (5, float(sum(40000 + i for i in (1, 3, 5, 7, 9)))),
        "success": (5, float(sum(40000 + i for i in (0, 2, 4, 6)))),  # evt-8 has no port
    }
    distinct = sample.aggregate(
        Query(), Aggregation("terms", "event.outcome", metric="distinct", metric_field="user.name")
    )
    assert {b.key: (b.count, b.value) for b in distinct} == {"failure": (5, 4.0), "success": (5, 3.0)}


def test_histogram_distinct_and_sum_aggregations(store: EventStore) -> None:
    # 2024-03-01T12:00:00Z is a multiple of 600 s, so buckets start on the hour and every 10 min.
    events = [make_event(i, seconds=i * 120) for i in range(12)]  # one every 2 minutes
    write_all(store, events)
    buckets = store.aggregate(Query(), Aggregation("histogram", interval_seconds=600))
    assert [(b.key, b.count) for b in buckets] == [
        (BASE_TIME + timedelta(minutes=10 * k), n) for k, n in enumerate([5, 5, 2])
    ]
    assert all(b.key.tzinfo is not None and b.key.utcoffset() == timedelta(0) for b in buckets)
    with_metric = store.aggregate(
        Query(start=BASE_TIME, end=BASE_TIME + timedelta(minutes=20)),
        Aggregation("histogram", interval_seconds=600, metric="distinct", metric_field="user.name"),
    )
    assert [(b.count, b.value) for b in with_metric] == [(5, 3.0), (5, 3.0)]
    summed = store.aggregate(
        Query(), Aggregation("histogram", interval_seconds=1200, metric="sum", metric_field="source.port")
    )
    assert [b.value for b in summed] == [float(sum(40000 + i for i in range(10))), float(40010 + 40011)]
    distinct = store.aggregate(Query(), Aggregation("distinct", "user.name"))
    assert len(distinct) == 1 and distinct[0].key is None and distinct[0].value == 3.0 and distinct[0].count == 12
    total = store.aggregate(Query((Term("user.name", "user0"),)), Aggregation("sum", "source.port"))
    assert total[0].value == float(sum(40000 + i for i in range(0, 12, 3))) and total[0].count == 4
    nothing = store.aggregate(Query((Term("user.name", "nobody"),)), Aggregation("sum", "source.port"))
    assert nothing[0].value == 0.0 and nothing[0].count == 0


def test_retention_deletes_only_older_events(store: EventStore) -> None:
    write_all(store, [make_event(i, seconds=i * 3600) for i in range(10)])
    deleted = store.delete_older_than(BASE_TIME + timedelta(hours=4))
    store.refresh()
    assert deleted == 4
    assert store.count(Query()) == 6
    page = store.search(Query(), size=100)
    assert min(e["@timestamp"] for e in page.events) == iso(BASE_TIME + timedelta(hours=4))


def test_apply_retention_uses_retention_days(store: EventStore) -> None:
    now = datetime.now(UTC)
    old = make_event(1, seconds=0)
    old["@timestamp"] = iso(now - timedelta(days=400))
    fresh = make_event(2, seconds=0)
    fresh["@timestamp"] = iso(now - timedelta(days=1))
    write_all(store, [old, fresh])
    removed = store.apply_retention(now)  # type: ignore[attr-defined]
    store.refresh()
    if getattr(store, "ilm", False):
        assert removed == 0  # ILM deletes whole backing indices on its own schedule
    else:
        assert removed == 1 and ids(store.search(Query()).events) == ["evt-00002"]


def test_vietnamese_text_round_trips(store: EventStore) -> None:
    event = make_event(1, fields={"user.name": "nguyễn.văn.ánh", "soc.site": "Sở Nội vụ tỉnh Hà Giang"})
    event["message"] = "Đăng nhập thất bại cho người dùng Nguyễn Văn Ánh từ 10.1.1.2"
    event["event"]["original"] = "Tháng 3 01 12:00:01 srv-01 sshd[812]: Failed password for nguyễn.văn.ánh"
    write_all(store, [event])
    (found,) = store.search(Query((Term("user.name", "nguyễn.văn.ánh"),))).events
    assert found == event
    assert store.get(["evt-00001"]) == [event]
    sites = store.aggregate(Query(), Aggregation("terms", "soc.site"))
    assert sites[0].key == "Sở Nội vụ tỉnh Hà Giang"


def test_half_flattened_documents_are_queryable(store: EventStore) -> None:
    flat = {
        "@timestamp": iso(BASE_TIME),
        "event.id": "flat-1",
        "event.dataset": "json",
        "source.ip": "172.16.0.9",
        "process": {"command_line": "whoami /all"},
    }
    result = store.write([flat])
    assert result.stored == 1, result.errors
    store.refresh()
    assert matching(store, Term("source.ip", "172.16.0.9")) == {"flat-1"}
    assert matching(store, Term("event.dataset", "json")) == {"flat-1"}


def test_health_reports_reachable_and_count(sample: EventStore) -> None:
    status = sample.health()
    assert status["reachable"] is True
    assert status["count"] == 10
    assert status["size_bytes"] is None or status["size_bytes"] > 0
