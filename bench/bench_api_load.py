"""SOC API latency and throughput over HTTP with a million alerts in PostgreSQL.

    .venv/bin/python bench/bench_api_load.py [--alerts 1000000] [--pg-url postgresql://...] \
        [--samples 300] [--wrk-seconds 20] [--connections 16]

Loads the alerts with bench_alert_db's loader, serves the real app with uvicorn on 127.0.0.1,
then measures (1) p50/p95 of the filtered triage query and of alert detail with sequential
requests, and (2) sustained requests/s of the list endpoint with ``wrk`` (Debian package wrk).
Target: p95 < 100 ms. Only loopback traffic.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_alert_db import SITES, _postgres, fill

from soc_api.app import create_app
from soc_api.config import ApiConfig
from soc_api.db.models import Site, User
from soc_api.services.auth import hash_password

TARGET_P95_MS = 100.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _time_requests(client: httpx.Client, urls: list[str]) -> tuple[float, float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {r.status_code} {r.text[:200]}")
    return _percentiles(times)


def _wrk(url: str, token: str, seconds: int, connections: int) -> tuple[float, str]:
    if shutil.which("wrk") is None:
        return 0.0, "wrk not installed (apt-get install wrk)"
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    note = f"p99 {p99.group(1) if p99 else '?'}; non-2xx {non2xx.group(1) if non2xx else 0}"
    return float(rps.group(1)) if rps else 0.0, note


def run(url: str, n: int, samples: int, wrk_seconds: int, connections: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = ApiConfig.model_validate(
            {"data_dir": tmp, "database": {"url": url, "pool_size": 20}, "security": {"session_secret": "b" * 48}}
        )
        app = create_app(config)
        state = app.state.soc
        with state.sessions.begin() as s:
            s.add_all([Site(code=code, name=code) for code in SITES])
            s.add(
                User(username="bench", password_hash=hash_password("bench-password-1"), role="admin", recovery_codes=[])
            )
        seconds = fill(state.sessions, n)
        with state.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        print(f"{n:,} alerts loaded in {seconds:.0f} s")
        with state.sessions() as s:
            uid = s.query(User.id).filter(User.username == "bench").scalar()
            ids = [r[0] for r in s.execute(text("SELECT id FROM alerts ORDER BY random() LIMIT :n"), {"n": samples})]
        token, _ = state.signer.issue(uid, "access", timedelta(hours=2))
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", workers=1))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        rnd = random.Random(3)
        filtered = [
            f"/api/v1/alerts?status=new&severity=high&severity=critical&site={rnd.choice(SITES)}&limit=50"
            for _ in range(samples)
        ]
        rows: list[tuple[str, float, float]] = []
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            _time_requests(client, filtered[:20])  # warm-up
            rows.append(("filtered triage list (50/page)", *_time_requests(client, filtered)))
            rows.append(("alert detail", *_time_requests(client, [f"/api/v1/alerts/{i}" for i in ids])))
        rps, note = _wrk(f"{base}/api/v1/alerts?limit=50", token, wrk_seconds, connections)
        server.should_exit = True
        thread.join(timeout=10)
        print(f"\n{'measurement':34} {'p50 ms':>9} {'p95 ms':>9} {'p95<100ms':>10}")
        for name, p50, p95 in rows:
            print(f"{name:34} {p50:9.1f} {p95:9.1f} {'yes' if p95 < TARGET_P95_MS else 'NO':>10}")
        print(f"\nwrk list endpoint, {connections} connections, {wrk_seconds} s: {rps:,.0f} requests/s ({note})")
        state.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--wrk-seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with _postgres(args.pg_url) as url:
        run(url, args.alerts, args.samples, args.wrk_seconds, args.connections)


if __name__ == "__main__":
    main()
