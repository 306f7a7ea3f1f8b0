"""merge_expositions: the supervisor's sum of its workers' /metrics texts (real registries, no mocks)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collector.metrics import CollectorMetrics
from collector.metrics_merge import merge_expositions

Key = tuple[str, tuple[tuple[str, str], ...]]


def samples(text: bytes) -> dict[Key, float]:
    """{(sample name, sorted labels): value} of an exposition, parsed by prometheus_client."""
    out: dict[Key, float] = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def value(text: bytes, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


def family_types(text: bytes) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text.decode())}


def type_lines(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if line.startswith("# TYPE ")]


class FakeReceiver:
    """Stands in for a syslog/NetFlow receiver: only stats() is read by the metrics collector."""

    def __init__(self, stats: dict[str, Any]) -> None:
        self._stats = stats

    def stats(self) -> dict[str, Any]:
        return self._stats


@pytest.fixture
def workers() -> list[CollectorMetrics]:
    return [CollectorMetrics() for _ in range(3)]


def test_counters_are_summed_per_label_set(workers: list[CollectorMetrics]) -> None:
    a, b, c = workers
    a.received.labels(source="agent").inc(5)
    a.received.labels(source="syslog").inc(2)
    b.received.labels(source="agent").inc(3)
    c.received.labels(source="netflow").inc(7)  # only in one text
    c.store_errors.inc(4)
    b.store_errors.inc(1)
    merged = merge_expositions([m.render() for m in workers])

    assert value(merged, "soc_collector_events_received_total", source="agent") == 8
    assert value(merged, "soc_collector_events_received_total", source="syslog") == 2
    assert value(merged, "soc_collector_events_received_total", source="netflow") == 7
    assert value(merged, "soc_collector_store_errors_total") == 5
    assert family_types(merged)["soc_collector_events_received"] == "counter"


def test_gauges_summed_except_start_time_min_and_max_abs_max(workers: list[CollectorMetrics]) -> None:
    a, b, c = workers
    a.queue_depth.labels(queue="store").set(2)
    b.queue_depth.labels(queue="store").set(5)
    c.queue_depth.labels(queue="detect").set(1)
    for m, start in zip(workers, (1_700_000_100.0, 1_700_000_000.0, 1_700_000_200.0), strict=True):
        m.up_since.set(start)
    a.watch_clock_skew(lambda: {"host-a": -3.0})
    b.watch_clock_skew(lambda: {"host-b": 7.5, "host-c": 1.0})
    c.watch_clock_skew(lambda: {})
    merged = merge_expositions([m.render() for m in workers])

    assert value(merged, "soc_collector_queue_depth", queue="store") == 7
    assert value(merged, "soc_collector_queue_depth", queue="detect") == 1
    assert value(merged, "soc_collector_start_time_seconds") == 1_700_000_000.0
    assert value(merged, "soc_collector_agent_clock_skew_max_abs_seconds") == 7.5
    assert value(merged, "soc_collector_agent_clock_skew_seconds", agent="host-a") == -3.0
    assert value(merged, "soc_collector_agent_clock_skew_seconds", agent="host-b") == 7.5


def test_created_timestamps_take_the_earliest(workers: list[CollectorMetrics]) -> None:
    for m in workers:
        m.received.labels(source="agent").inc()
    texts = [m.render() for m in reversed(workers)]  # the earliest is not first
    merged = merge_expositions(texts)

    for name, labels in (
        ("soc_collector_events_received_created", {"source": "agent"}),
        ("soc_collector_store_write_seconds_created", {}),
        ("soc_collector_store_errors_created", {}),
    ):
        inputs = [value(t, name, **labels) for t in texts]
        assert value(merged, name, **labels) == min(inputs), name
    # Not summed: three timestamps added together would be far in the future.
    assert value(merged, "soc_collector_store_errors_created") < 2 * min(
        value(t, "soc_collector_store_errors_created") for t in texts
    )


def test_histogram_buckets_count_and_sum_are_summed(workers: list[CollectorMetrics]) -> None:
    a, b, c = workers
    for seconds in (0.002, 0.2):
        a.store_latency.observe(seconds)
    for seconds in (0.02, 20.0):
        b.store_latency.observe(seconds)
    c.store_latency.observe(0.004)
    texts = [m.render() for m in workers]
    merged = merge_expositions(texts)

    name = "soc_collector_store_write_seconds"
    assert value(merged, f"{name}_count") == 5
    assert value(merged, f"{name}_sum") == pytest.approx(0.002 + 0.2 + 0.02 + 20.0 + 0.004)
    merged_buckets = [(s.labels["le"], s.value) for s in _family(merged, name).samples if s.name == f"{name}_bucket"]
    input_buckets = [s.labels["le"] for s in _family(texts[0], name).samples if s.name == f"{name}_bucket"]
    assert [le for le, _ in merged_buckets] == input_buckets
    assert merged_buckets[-1] == ("+Inf", 5)
    for le, count in merged_buckets:
        assert count == sum(value(t, f"{name}_bucket", le=le) for t in texts), le
    assert value(merged, f"{name}_bucket", le="0.005") == 2  # 0.002 and 0.004
    assert value(merged, f"{name}_bucket", le="10.0") == 4  # all but 20 s


def test_histogram_buckets_stay_ascending_when_layouts_differ() -> None:
    texts = []
    for buckets in ((0.1, 1.0), (0.5, 1.0, 5.0)):
        registry = CollectorRegistry()
        h = Histogram("job_seconds", "Job time", ["queue"], buckets=buckets, registry=registry)
        h.labels(queue="q").observe(0.3)
        texts.append(generate_latest(registry))
    merged = merge_expositions(texts)

    les = [s.labels["le"] for s in _family(merged, "job_seconds").samples if s.name == "job_seconds_bucket"]
    assert les == ["0.1", "0.5", "1.0", "5.0", "+Inf"]
    assert value(merged, "job_seconds_bucket", queue="q", le="+Inf") == 2
    assert value(merged, "job_seconds_bucket", queue="q", le="0.5") == 1  # only the second text has it
    names = [s.name for s in _family(merged, "job_seconds").samples]
    assert names[-2:] == ["job_seconds_count", "job_seconds_sum"]


def test_custom_collector_families_merge(workers: list[CollectorMetrics]) -> None:
    a, b, _ = workers
    a.watch_receivers(
        lambda: {
            "syslog": FakeReceiver({"received": 10, "udp_kernel_drops": 3, "queued": 4}),
            "netflow": FakeReceiver({"packets_received": 6, "malformed_packets": 1}),
        }
    )
    b.watch_receivers(lambda: {"syslog": FakeReceiver({"received": 5, "udp_kernel_drops": 2, "queued": 1})})
    a.watch_clock_tags(lambda: {"clock_skew": 2, "late_arrival": 1})
    b.watch_clock_tags(lambda: {"clock_skew": 5})
    merged = merge_expositions([m.render() for m in workers])

    dropped = "soc_collector_receiver_dropped_total"
    assert value(merged, dropped, receiver="syslog", reason="kernel") == 5
    assert value(merged, dropped, receiver="netflow", reason="malformed") == 1
    assert value(merged, "soc_collector_receiver_records_total", receiver="syslog", kind="received") == 15
    assert value(merged, "soc_collector_receiver_records_total", receiver="netflow", kind="packets_received") == 6
    assert value(merged, "soc_collector_receiver_state", receiver="syslog", kind="queued") == 5
    assert value(merged, "soc_collector_events_clock_tagged_total", tag="clock_skew") == 7
    assert value(merged, "soc_collector_events_clock_tagged_total", tag="late_arrival") == 1
    types = family_types(merged)
    assert types["soc_collector_receiver_dropped"] == "counter"
    assert types["soc_collector_receiver_state"] == "gauge"
    assert "# TYPE soc_collector_receiver_dropped_total counter" in type_lines(merged)


def test_unparsable_text_is_skipped_and_logged(
    workers: list[CollectorMetrics], caplog: pytest.LogCaptureFixture
) -> None:
    a, b, _ = workers
    a.received.labels(source="agent").inc(5)
    b.received.labels(source="agent").inc(3)
    good = [a.render(), b.render()]
    with caplog.at_level(logging.WARNING, logger="collector.metrics_merge"):
        merged = merge_expositions([good[0], b"this is { not prometheus", good[1], b"\xff\xfe\x00"])

    assert merged == merge_expositions(good)
    assert value(merged, "soc_collector_events_received_total", source="agent") == 8
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "#1" in warnings[0].getMessage() and "#3" in warnings[0].getMessage()


def test_empty_and_all_garbage_inputs_give_empty_output(caplog: pytest.LogCaptureFixture) -> None:
    assert merge_expositions([]) == b""
    assert merge_expositions([b""]) == b""
    with caplog.at_level(logging.WARNING, logger="collector.metrics_merge"):
        assert merge_expositions([b"garbage", b"<html>oops</html>"]) == b""
    assert caplog.records


def test_single_text_round_trips(workers: list[CollectorMetrics]) -> None:
    m = workers[0]
    m.received.labels(source="agent").inc(5)
    m.queue_depth.labels(queue='odd "name"\\ with\nnewline').set(2)
    m.store_latency.observe(0.3)
    m.watch_receivers(lambda: {"syslog": FakeReceiver({"received": 1, "kernel_drops": 2})})
    m.watch_clock_skew(lambda: {"host-a": 1.5})
    text = m.render()
    merged = merge_expositions([text])

    assert samples(merged) == samples(text)
    assert type_lines(merged) == type_lines(text)
    assert merged == text  # with one worker, /metrics is byte for byte what it was


def test_sample_names_are_kept(workers: list[CollectorMetrics]) -> None:
    for m in workers:
        m.received.labels(source="agent").inc()
        m.store_latency.observe(0.01)
    texts = [m.render() for m in workers]
    merged = merge_expositions(texts)

    names = {name for name, _ in samples(merged)}
    assert names == {name for t in texts for name, _ in samples(t)}
    assert {"soc_collector_events_received_total", "soc_collector_events_received_created"} <= names
    assert {f"soc_collector_store_write_seconds_{s}" for s in ("bucket", "count", "sum", "created")} <= names
    # Every sample line's metric name is the raw text's: no "_total_total", no bare counter names.
    raw_names = {line.split("{")[0].split(" ")[0] for line in merged.decode().splitlines() if not line.startswith("#")}
    assert raw_names == names
    assert type_lines(merged) == type_lines(texts[0])


def test_order_is_first_seen() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    g1 = Gauge("zeta", "Z", ["k"], registry=first)
    g1.labels(k="b").set(1)
    g1.labels(k="a").set(1)
    Gauge("alpha", "A", registry=second).set(1)
    g2 = Gauge("zeta", "Z again", ["k"], registry=second)
    g2.labels(k="c").set(1)
    g2.labels(k="a").set(1)
    merged = merge_expositions([generate_latest(first), generate_latest(second)])

    families = list(text_string_to_metric_families(merged.decode()))
    assert [f.name for f in families] == ["zeta", "alpha"]
    assert families[0].documentation == "Z"
    assert [(s.labels["k"], s.value) for s in families[0].samples] == [("b", 1), ("a", 2), ("c", 1)]


def test_type_conflict_keeps_first_type(caplog: pytest.LogCaptureFixture) -> None:
    gauge_text = b"# HELP jobs Jobs\n# TYPE jobs gauge\njobs 3.0\n"
    counter_text = b"# HELP jobs_total Jobs\n# TYPE jobs_total counter\njobs_total 4.0\n"
    with caplog.at_level(logging.WARNING, logger="collector.metrics_merge"):
        merged = merge_expositions([gauge_text, counter_text, gauge_text])

    assert family_types(merged) == {"jobs": "gauge"}
    assert samples(merged) == {("jobs", ()): 6.0}
    assert any("jobs" in r.getMessage() for r in caplog.records)


def _family(text: bytes, name: str) -> Any:
    return next(f for f in text_string_to_metric_families(text.decode()) if f.name == name)


def test_bucket_bounds_match_as_numbers() -> None:
    head = b"# HELP d_seconds D\n# TYPE d_seconds histogram\n"
    one = head + b'd_seconds_bucket{le="1"} 1\nd_seconds_bucket{le="+Inf"} 1\nd_seconds_count 1\nd_seconds_sum 0.5\n'
    two = head + b'd_seconds_bucket{le="1.0"} 2\nd_seconds_bucket{le="+Inf"} 3\nd_seconds_count 3\nd_seconds_sum 4\n'
    merged = merge_expositions([one, two])

    assert samples(merged) == {
        ("d_seconds_bucket", (("le", "1"),)): 3,
        ("d_seconds_bucket", (("le", "+Inf"),)): 4,
        ("d_seconds_count", ()): 4,
        ("d_seconds_sum", ()): 4.5,
    }
