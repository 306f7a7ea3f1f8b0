"""The exact end tally: what each generator sent, per phase, against what is in the store.

The store is read through the EventStore contract (``search`` with a cursor), so the same code
counts the SQLite and the Elasticsearch variants. A record is found by its sequence token
(``sq<stream>n<number>`` in the original text) or, for NetFlow, by its source address.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soak_load import FLOWS_PER_PACKET, NETFLOW_BASE, TOKEN, Generator, NetflowSender

from collector.store.base import EventStore, Query
from soc_common.ecs import get, parse_ts

if TYPE_CHECKING:
    from harness import SoakStack

PATH_OF_STREAM = {"st": "syslog-tcp", "su": "syslog-udp", "nf": "netflow"}
ACKNOWLEDGED = ("agent",)  # paths whose data is acknowledged end to end: loss must be 0


def path_of(stream: str) -> str:
    return PATH_OF_STREAM.get(stream, "agent")


@dataclass
class Row:
    sent: int = 0
    stored: int = 0
    duplicated: int = 0

    @property
    def lost(self) -> int:
        return self.sent - self.stored


@dataclass
class Tally:
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)  # (phase, path) -> counts
    streams: dict[str, Row] = field(default_factory=dict)  # per generator (a0, a1, st, su, nf), all phases
    total_events: int = 0
    store_bytes: int = 0
    skew: dict[str, Any] = field(default_factory=dict)
    unattributed: int = 0  # stored tokens no generator sent (must be 0)

    def path_total(self, path: str) -> Row:
        out = Row()
        for (_, p), row in self.rows.items():
            if p == path:
                out.sent += row.sent
                out.stored += row.stored
                out.duplicated += row.duplicated
        return out


class UdpDropWatcher:
    """The kernel's drop counter of the collector's UDP syslog socket (``/proc/net/udp``), over restarts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._by_inode: dict[str, int] = {}

    def poll(self) -> None:
        for table in (Path("/proc/net/udp"), Path("/proc/net/udp6")):
            try:
                lines = table.read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                cols = line.split()
                if len(cols) < 13 or int(cols[1].rsplit(":", 1)[1], 16) != self.port:
                    continue
                self._by_inode[cols[9]] = int(cols[12])

    @property
    def total(self) -> int:
        return sum(self._by_inode.values())


def open_store(stack: SoakStack) -> EventStore:
    if stack.settings.store == "sqlite":
        from collector.store.sqlite import SqliteEventStore

        return SqliteEventStore(stack.layout.events_db)
    import sys

    from elasticsearch import Elasticsearch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from store.osmem_node import PlainJsonNode

    from collector.store.elastic import ElasticEventStore
    from collector.store.settings import StoreSettings

    client = Elasticsearch(hosts=[stack.osmem.url], node_class=PlainJsonNode, request_timeout=60, max_retries=0)
    return ElasticEventStore(StoreSettings(kind="elasticsearch", replicas=0), client=client)


def _keys(event: dict[str, Any]) -> set[tuple[str, int]]:
    """The (stream, number) keys an event carries."""
    if get(event, "event.dataset") == "netflow.flow":
        ip = get(event, "source.ip")
        parts = str(ip).split(".")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            value = (int(parts[0]) << 24 | int(parts[1]) << 16 | int(parts[2]) << 8 | int(parts[3])) - NETFLOW_BASE
            if 0 <= value < 1 << 24:
                return {("nf", value)}
        return set()
    text = f"{get(event, 'event.original') or ''} {get(event, 'message') or ''}"
    return {(m.group(1), int(m.group(2))) for m in TOKEN.finditer(text)}


def tally_store(stack: SoakStack, generators: list[Generator]) -> Tally:
    copies: Counter[tuple[str, int]] = Counter()
    skewed_stream = f"a{stack.settings.agents - 1}" if stack.settings.agents > 1 else None
    offsets: list[float] = []
    skew_tags: Counter[str] = Counter()
    tally = Tally()
    store = open_store(stack)
    try:
        cursor: str | None = None
        while True:
            page = store.search(Query(), size=2000, cursor=cursor)
            for event in page.events:
                tally.total_events += 1
                keys = _keys(event)
                copies.update(keys)
                if skewed_stream and any(s == skewed_stream for s, _ in keys):
                    _skew_sample(event, offsets, skew_tags)
            cursor = page.cursor
            if not cursor or not page.events:
                break
        tally.store_bytes = int(store.health().get("size_bytes", 0) or 0)
    finally:
        store.close()
    sent_keys: set[tuple[str, int]] = set()
    for g in generators:
        path = path_of(g.stream)
        total = tally.streams.setdefault(g.stream, Row())
        for phase, numbers in g.sent_by_phase().items():
            row = tally.rows.setdefault((phase, path), Row())
            for n in numbers:
                records = (
                    [("nf", n * FLOWS_PER_PACKET + i) for i in range(FLOWS_PER_PACKET)]
                    if isinstance(g, NetflowSender)
                    else [(g.stream, n)]
                )
                for key in records:
                    sent_keys.add(key)
                    for counts in (row, total):
                        counts.sent += 1
                        if copies[key]:
                            counts.stored += 1
                            counts.duplicated += copies[key] - 1
    tally.unattributed = sum(1 for key in copies if key not in sent_keys)
    if offsets:
        tally.skew = {
            "stream": skewed_stream,
            "events": len(offsets),
            "median_offset_s": round(statistics.median(offsets), 1),
            "tags": dict(skew_tags),
        }
    return tally


def _skew_sample(event: dict[str, Any], offsets: list[float], tags: Counter[str]) -> None:
    try:
        ts, ingested = parse_ts(event["@timestamp"]), parse_ts(get(event, "event.ingested"))
    except (KeyError, ValueError, TypeError):
        return
    offsets.append((ts - ingested).total_seconds())
    for tag in event.get("tags") or []:
        tags[str(tag)] += 1


def mib(n: int) -> str:
    return f"{n / (1 << 20):.0f}"


def markdown(result: Any) -> str:
    """The per-fault table (a SoakResult in, Markdown out)."""
    tally: Tally = result.tally
    lines = [
        "| phase | path | sent | stored | duplicated | lost | peak RSS MiB collector / API / agent | recovery s |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    order = ["steady", *[n for p in result.phases for n in (p.name, f"after {p.name}")], "drain"]
    by_phase: dict[str, list[tuple[str, Row]]] = defaultdict(list)
    for (phase, path), row in sorted(tally.rows.items()):
        by_phase[phase].append((path, row))
    recovery = {p.name: p for p in result.phases}
    for phase in order:
        info = recovery.get(phase)
        if info is not None and info.skipped:
            lines.append(f"| {phase} | - | - | - | - | - | - | skipped: {info.skipped} |")
            continue
        mem = " / ".join(mib(result.memory.get((phase, role), 0)) for role in ("collector", "api", "agent"))
        rec = "-" if info is None else ("never" if info.recovery is None else f"{info.recovery:.1f}")
        for path, row in by_phase.get(phase, []):
            lines.append(
                f"| {phase} | {path} | {row.sent} | {row.stored} | {row.duplicated} | {row.lost} | {mem} | {rec} |"
            )
    for path in ("agent", "syslog-tcp", "syslog-udp", "netflow"):
        total = tally.path_total(path)
        if total.sent:
            lines.append(
                f"| **total** | {path} | {total.sent} | {total.stored} | {total.duplicated} | {total.lost} | | |"
            )
    return "\n".join(lines)
