"""The agent's status file: written by the running agent, read by ``soc agent status``.

A file rather than a local socket: it needs no listener (nothing to secure), it survives the agent
(the last state before a crash stays readable), and it works the same on Linux and Windows.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"


def status_path(data_dir: Path) -> Path:
    return data_dir / STATUS_FILE


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(status, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_stale(status: dict[str, Any], now: float | None = None) -> bool:
    """True when the agent stopped updating the file (not running, or hung)."""
    written = float(status.get("written_epoch", 0))
    interval = float(status.get("interval", 5))
    return (now or time.time()) - written > max(3 * interval, 15)


def _size(n: object) -> str:
    value = float(n) if isinstance(n, int | float) else 0.0
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def render_status(status: dict[str, Any], now: float | None = None) -> str:
    """A short human summary; the JSON form carries everything."""
    state = status.get("state", "unknown")
    if state == "running" and is_stale(status, now):
        state = "not running (status file is stale)"
    spool = status.get("spool", {})
    ship = status.get("shipping", {})
    lines = [
        f"agent      {status.get('agent_id') or '(not enrolled)'}  version {status.get('version', '?')}",
        f"state      {state}  (updated {status.get('updated', '?')}, pid {status.get('pid', '?')})",
        f"collector  {ship.get('collector_url') or '(none)'}",
        f"spool      {spool.get('pending_events', 0)} events / "
        f"{_size(spool.get('pending_bytes', 0))} waiting, "
        f"{_size(spool.get('disk_bytes', 0))} on disk of {_size(spool.get('max_bytes', 0))}, "
        f"dropped {spool.get('dropped_events', 0)}",
        f"shipping   acked {ship.get('acked', 0)}, rejected {ship.get('rejected', 0)}, "
        f"retries {ship.get('retries', 0)}, last ack {ship.get('last_ack') or 'never'}",
    ]
    if ship.get("last_error"):
        lines.append(f"last error {ship['last_error']} ({ship.get('last_error_at')})")
    policy = status.get("policy", {})
    if policy:
        lines.append(f"policy     version {policy.get('version') or '(local only)'} {policy.get('last_error') or ''}")
    lines.append("sources:")
    for src in status.get("sources", []):
        flag = "running" if src.get("running") else "stopped"
        err = f"  last error: {src['last_error']}" if src.get("last_error") else ""
        lines.append(
            f"  {src.get('name')} ({src.get('type')}): {flag}, events {src.get('events', 0)}, "
            f"restarts {src.get('restarts', 0)}, errors {src.get('errors', 0)}{err}"
        )
    return "\n".join(lines)
