"""Certificate expiry for ``soc doctor``: the collector's CA and server certificate, and every agent's.

An expired agent certificate silently stops that agent's shipping (the collector answers 401/403),
and an expired CA stops all of them, so doctor warns 30 days ahead. Agents' expiry dates come from
the collector's registry, opened read-only so a running collector is never disturbed.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from soc_common.doctor import Finding, Status

WARN_DAYS = 30


def _grade(days: int) -> Status:
    return "ok" if days > WARN_DAYS else ("warn" if days > 0 else "fail")


def check_certificate_file(role: str, label: str, path: Path, now: dt.datetime | None = None) -> Iterator[Finding]:
    from cryptography import x509

    if not path.exists():
        yield Finding(role, label, "skip", f"{path} not created yet (first start creates it)")
        return
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        yield Finding(role, label, "fail", f"{path}: unreadable: {exc}")
        return
    days = (cert.not_valid_after_utc - (now or dt.datetime.now(dt.UTC))).days
    yield Finding(role, label, _grade(days), f"expires in {days} days ({cert.not_valid_after_utc:%Y-%m-%d})")


def check_agent_certificates(role: str, registry: Path, now: dt.datetime | None = None) -> Iterator[Finding]:
    """Unrevoked agents whose client certificate expires within WARN_DAYS (or has expired)."""
    if not registry.exists():
        yield Finding(role, "agent certificates", "skip", "no agent enrolled yet")
        return
    now = now or dt.datetime.now(dt.UTC)
    try:
        with closing(sqlite3.connect(f"file:{registry}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute(
                "SELECT id, hostname, cert_not_after FROM agents"
                " WHERE revoked_at IS NULL AND cert_not_after IS NOT NULL"
            ).fetchall()
    except sqlite3.Error as exc:
        yield Finding(role, "agent certificates", "warn", f"cannot read {registry}: {exc}")
        return
    soon: list[tuple[int, str]] = []
    for agent_id, hostname, not_after in rows:
        try:
            days = (dt.datetime.fromisoformat(not_after) - now).days
        except (TypeError, ValueError):
            continue
        if days <= WARN_DAYS:
            soon.append((days, f"{hostname} ({agent_id[:8]}) {days} d"))
    if not soon:
        yield Finding(role, "agent certificates", "ok", f"{len(rows)} agents, none expires within {WARN_DAYS} days")
        return
    soon.sort()
    listed = ", ".join(text for _, text in soon[:10]) + (f" and {len(soon) - 10} more" if len(soon) > 10 else "")
    status: Status = "fail" if soon[0][0] <= 0 else "warn"
    yield Finding(role, "agent certificates", status, f"{len(soon)} expire within {WARN_DAYS} days: {listed}; re-enrol")
