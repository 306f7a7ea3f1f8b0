"""Information-system attribution (``soc.system_id``) at a province's scale.

(a) copying the registry: ``RegistrySync.sync_once`` over a SOC database (SQLite) holding
    ``--systems`` systems with ``--hosts`` linked hosts (each with a name, an agent and an address)
    and one network per system: seconds per copy, and the snapshot's size;
(b) the pipeline's cost: CPU microseconds per event of ``EnrichSystem`` with no links (the
    processor returns at once), then with that registry, for agent events (matched by agent id),
    syslog lines (by host name), and lines from unknown hosts (every lookup misses).

    .venv/bin/python bench/bench_systems.py [--systems 200] [--hosts 5000] [--events 100000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from collector.config import EnrichSettings
from collector.pipeline.systems import EnrichSystem, RegistryResolver, StaticSystemResolver, SystemResolver
from collector.registry_sync import RegistrySync
from soc_api.db.migrate import upgrade
from soc_api.db.models import Site
from soc_api.db.session import make_engine
from soc_api.systems.models import InformationSystem, Organisation, SystemHost
from soc_common.ecs import Event


def fill_registry(url: str, systems: int, hosts: int) -> None:
    engine = make_engine(url)
    upgrade(url, engine=engine)
    with Session(engine) as s, s.begin():
        s.add(Site(code="hn", name="Hà Nội"))
        s.flush()
        org = Organisation(code="tu-hn", name="Tỉnh ủy", kind="agency", site="hn")
        s.add(org)
        s.flush()
        for n in range(systems):
            s.add(
                InformationSystem(
                    id=f"sys-{n}", name=f"System {n}", site="hn", owner_org_id=org.id, operator_org_id=org.id,
                    security_unit_org_id=org.id, cidrs=[f"10.{n // 250}.{n % 250}.0/24"],
                )
            )  # fmt: skip
        s.flush()
        for n in range(hosts):
            s.add(
                SystemHost(
                    system_id=f"sys-{n % systems}", host_name=f"pc-{n:05d}", agent_id=f"agent-{n:05d}",
                    ip=f"172.16.{n // 250}.{n % 250}",
                )
            )  # fmt: skip
    engine.dispose()


def events(kind: str, count: int, hosts: int) -> list[Event]:
    if kind == "agent":
        return [
            {"soc": {"agent_id": f"agent-{n % hosts:05d}"}, "host": {"name": f"pc-{n % hosts:05d}"}}
            for n in range(count)
        ]
    if kind == "syslog":
        return [{"host": {"hostname": f"pc-{n % hosts:05d}"}, "observer": {"ip": "10.0.0.1"}} for n in range(count)]
    return [{"host": {"hostname": f"unknown-{n % 997}", "ip": "192.0.2.7"}} for n in range(count)]


def cpu_us(resolver: SystemResolver, batch: list[Event]) -> float:
    processor = EnrichSystem(resolver)
    best = float("inf")
    for _ in range(3):
        copies = [{k: dict(v) for k, v in e.items()} for e in batch]
        chunks = [copies[i : i + 1000] for i in range(0, len(copies), 1000)]
        started = time.process_time()
        for chunk in chunks:
            processor.process(chunk)
        best = min(best, time.process_time() - started)
    return best / len(batch) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--systems", type=int, default=200)
    ap.add_argument("--hosts", type=int, default=5000)
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args()
    print(f"nproc={os.cpu_count()} load={' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/soc.db"
        fill_registry(url, args.systems, args.hosts)
        snapshot = Path(tmp) / "systems.json"
        sync = RegistrySync(url, snapshot, interval=60)
        times = []
        for _ in range(3):
            snapshot.unlink(missing_ok=True)
            sync._written = None  # force the write, as the first copy after a start
            started = time.perf_counter()
            assert sync.sync_once()
            times.append(time.perf_counter() - started)
        sync.stop()
        print(f"\n(a) registry copy: {args.systems} systems, {args.hosts} hosts -> {sync.links} links, "
              f"{snapshot.stat().st_size / 1024:.0f} KiB; {min(times) * 1000:.0f} ms per copy (best of 3)")  # fmt: skip
        none = StaticSystemResolver(EnrichSettings())
        registry = RegistryResolver(EnrichSettings(), snapshot)
        print("\n(b) EnrichSystem, CPU us per event (1000-event batches, best of 3)")
        print(f"{'events':10} {'no links':>9} {'registry':>9}")
        for kind in ("agent", "syslog", "unknown"):
            batch = events(kind, args.events, args.hosts)
            print(f"{kind:10} {cpu_us(none, batch):9.2f} {cpu_us(registry, batch):9.2f}")


if __name__ == "__main__":
    main()
