"""Write/query throughput of the event stores.

    .venv/bin/python bench/bench_store.py [--events 200000] [--batch 2000] [--threads 2] \
        [--stores sqlite,es-osmem] [--prefill 1000000] [--sqlite-module /tmp/old_sqlite.py]

``--prefill N`` first writes N older events (untimed), so the timed writes go into a store that
holds history, as a collector's does after a few days; ``--sqlite-module`` runs another version of
``collector/store/sqlite.py`` (e.g. ``git show HEAD~1:collector/store/sqlite.py > /tmp/old.py``) for
a side-by-side comparison. The write CPU includes indexing everything written (``refresh``).

Prints events/s written, peak RSS and a few query timings per store. ``es-osmem`` needs
osmem-server (in-memory, so it measures the client path, not a real cluster); ``--es-url`` runs
against a real Elasticsearch.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collector.store.base import Aggregation, EventStore, Query, Term
from collector.store.settings import StoreSettings
from soc_common.ecs import Event, iso, stable_event_id

START = datetime(2024, 6, 1, tzinfo=UTC)


def auth_event(i: int) -> Event:
    ts = START + timedelta(milliseconds=i * 10)
    ip = f"10.{i % 7}.{(i // 7) % 250}.{i % 200 + 1}"
    user = f"user{i % 400}"
    return {
        "@timestamp": iso(ts),
        "ecs": {"version": "8.11.0"},
        "event": {
            "id": stable_event_id("bench-auth", i),
            "kind": "event",
            "dataset": "system.auth",
            "module": "system",
            "action": "ssh_login",
            "category": ["authentication"],
            "outcome": "failure" if i % 5 else "success",
            "ingested": iso(ts + timedelta(seconds=2)),
        },
        "host": {"name": f"srv-{i % 300:03d}", "hostname": f"srv-{i % 300:03d}"},
        "source": {"ip": ip, "port": 30000 + i % 30000},
        "user": {"name": user},
        "related": {"ip": [ip], "user": [user]},
        "soc": {"site": f"site-{i % 12}", "agent_id": f"agent-{i % 300:03d}"},
        "message": f"Failed password for {user} from {ip} port {30000 + i % 30000} ssh2",
    }


def flow_event(i: int) -> Event:
    ts = START + timedelta(milliseconds=i * 10)
    src, dst = f"10.{i % 7}.{i % 250}.{i % 200 + 1}", f"203.0.{i % 100}.{i % 250 + 1}"
    return {
        "@timestamp": iso(ts),
        "event": {
            "id": stable_event_id("bench-flow", i),
            "kind": "event",
            "dataset": "network_traffic.flow",
            "category": ["network"],
            "reason": "closed",
            "ingested": iso(ts + timedelta(seconds=2)),
        },
        "source": {"ip": src, "port": 40000 + i % 20000, "bytes": 1200 + i % 5000, "packets": 4 + i % 20},
        "destination": {"ip": dst, "port": (443, 80, 53, 22)[i % 4], "bytes": 5000 + i % 9000, "packets": 6},
        "network": {"transport": "tcp", "bytes": 6200 + i % 14000, "packets": 10 + i % 20},
        "host": {"name": f"srv-{i % 300:03d}"},
        # as the collector's enrichment leaves them: the anomaly detectors group on the zones
        "soc": {
            "site": f"site-{i % 12}",
            "agent_id": f"agent-{i % 300:03d}",
            "source_zone": "office",
            "destination_zone": "internet",
        },
        "related": {"ip": [src, dst]},
    }


def make_events(n: int) -> list[Event]:
    return [auth_event(i) if i % 2 else flow_event(i) for i in range(n)]


def write_all(
    store: EventStore, events: list[Event], batch: int, threads: int, busy: bool = False
) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the writer threads (SQLite included) and events stored.

    ``busy``: a thread stays busy in Python meanwhile, as receivers and detection do in the
    collector (its own CPU is not counted), to show what the writers lose to it over the GIL.
    """
    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    stored = 0
    lock = threading.Lock()

    def worker(mine: list[list[Event]]) -> None:
        nonlocal stored
        for chunk in mine:
            result = store.write(chunk)
            with lock:
                stored += result.stored

    stop = threading.Event()
    spinner = threading.Thread(target=_spin, args=(stop,), daemon=True)
    if busy:
        spinner.start()
    started, cpu = time.perf_counter(), time.process_time()
    spin_cpu = _spin_cpu[0]
    workers = [threading.Thread(target=worker, args=(batches[k::threads],)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stop.set()
    if busy:
        spinner.join()
        cpu -= _spin_cpu[0] - spin_cpu
    return elapsed, cpu, stored


_spin_cpu = [0.0]


def _spin(stop: threading.Event) -> None:
    started = time.thread_time()
    n = 0
    while not stop.is_set():
        n += 1
    _spin_cpu[0] += time.thread_time() - started


def rss_mib() -> float:
    """Peak resident set of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn: Callable[[], Any], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def queries(store: EventStore, n: int) -> dict[str, float]:
    mid = START + timedelta(milliseconds=n * 5)
    hour = Query(start=mid, end=mid + timedelta(minutes=10))
    return {
        "count 10-min window": timed(lambda: store.count(hour)),
        "search 10-min, 100 newest": timed(lambda: store.search(hour, size=100)),
        "search user.name (all time)": timed(lambda: store.search(Query((Term("user.name", "user7"),)), size=100)),
        "search related.ip in window": timed(lambda: store.search(hour.and_(Term("related.ip", "10.3.3.4")), size=100)),
        "terms event.dataset (all)": timed(lambda: store.aggregate(Query(), Aggregation("terms", "event.dataset"))),
        "terms source.ip+distinct port, 10 min": timed(
            lambda: store.aggregate(
                hour,
                Aggregation("terms", "source.ip", size=20, metric="distinct", metric_field="destination.port"),
            )
        ),
        "histogram 1 min, 10 min": timed(lambda: store.aggregate(hour, Aggregation("histogram", interval_seconds=60))),
    }


def prefill(store: EventStore, n: int, batch: int) -> None:
    """``n`` events from the days before the timed ones, with their own ids, written untimed."""
    step = 50_000
    for base in range(0, n, step):
        chunk = make_events(min(step, n - base))
        for k, event in enumerate(chunk):
            event["event"]["id"] = f"history-{base + k}"
            event["@timestamp"] = iso(START - timedelta(days=3) + timedelta(milliseconds=(base + k) * 200))
        for i in range(0, len(chunk), batch):
            store.write(chunk[i : i + batch])
    store.refresh()


def _sqlite_class(module_file: str | None) -> Any:
    if module_file is None:
        from collector.store.sqlite import SqliteEventStore

        return SqliteEventStore
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_sqlite_under_test", module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.SqliteEventStore


def open_bench_store(
    kind: str, tmp: Path, es_url: str | None, module_file: str | None = None
) -> tuple[EventStore, Callable[[], None]]:
    if kind == "sqlite":
        sqlite_store = _sqlite_class(module_file)(tmp / "bench.db")
        return sqlite_store, sqlite_store.close
    from elasticsearch import Elasticsearch

    from collector.store.elastic import ElasticEventStore

    settings = StoreSettings(kind="elasticsearch", index_prefix="soc-bench", replicas=0)
    if kind == "es-real":
        client = Elasticsearch(hosts=[es_url or ""])
        es_store = ElasticEventStore(settings, client=client)
        return es_store, client.close
    from osmem_server import OsmemServer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from store.osmem_node import PlainJsonNode  # the test-only adaptation; never in production

    server = OsmemServer.start(japanese=False)
    client = Elasticsearch(hosts=[server.url], node_class=PlainJsonNode, request_timeout=120)
    es_store = ElasticEventStore(settings, client=client)

    def close() -> None:
        client.close()
        server.close()

    return es_store, close


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stores", default="sqlite")
    parser.add_argument("--es-url", default=None)
    parser.add_argument("--prefill", type=int, default=0, help="older events written first, untimed")
    parser.add_argument("--busy-thread", action="store_true", help="a thread busy in Python during the writes")
    parser.add_argument("--sqlite-module", default=None, help="another version of collector/store/sqlite.py")
    args = parser.parse_args()
    events = make_events(args.events)
    # The test data alone is most of the peak RSS (about 2.5 KiB per event as Python dicts): report
    # it so the store's own share (the difference) is visible.
    data_rss = rss_mib()
    print(
        f"{args.events} events (half auth, half flow), batch {args.batch}, {args.threads} writer threads; "
        f"nproc {os.cpu_count()}, load average {load_average()}; RSS with test data built {data_rss:.0f} MiB"
    )
    with tempfile.TemporaryDirectory() as tmpdir:
        for kind in args.stores.split(","):
            store, close = open_bench_store(kind, Path(tmpdir), args.es_url, args.sqlite_module)
            try:
                if args.prefill:
                    started = time.perf_counter()
                    prefill(store, args.prefill, args.batch)
                    print(f"{kind}: prefilled {args.prefill} older events in {time.perf_counter() - started:.0f} s")
                elapsed, cpu, stored = write_all(store, events, args.batch, args.threads, args.busy_thread)
                cpu_before = time.process_time()
                store.refresh()  # indexing what was written is part of the write cost
                cpu += time.process_time() - cpu_before
                rss = rss_mib()
                print(
                    f"\n{kind}: wrote {stored} in {elapsed:.2f} s = {stored / elapsed:,.0f} events/s wall; "
                    f"CPU {cpu / max(stored, 1) * 1e6:.1f} us/event = {stored / cpu:,.0f} events per CPU-second; "
                    f"peak RSS {rss:.0f} MiB (+{rss - data_rss:.0f} MiB over the test data); "
                    f"load average {load_average()}"
                )
                redo, _cpu, dup_stored = write_all(store, events[: args.batch * 5], args.batch, 1)
                print(
                    f"{kind}: re-write of {args.batch * 5} duplicates: {dup_stored} stored, "
                    f"{args.batch * 5 / redo:,.0f} events/s"
                )
                print(f"{'query':<42}{'best of 5 (ms)':>16}")
                for name, ms in queries(store, args.events).items():
                    print(f"{name:<42}{ms:>16.1f}")
                health = store.health()
                print(f"{kind}: health count={health.get('count')} size={health.get('size_bytes')}")
            finally:
                close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
