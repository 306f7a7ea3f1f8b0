"""Enrolment tokens and enrolled agents, in a small SQLite file (data_dir/collector/state.db).

Tokens are shown once and stored only as a SHA-256 hash (they are 256-bit random, so a plain hash
is enough); the printable form is ``<id>.<secret>`` so an admin can list and revoke a token by its id
without ever seeing the secret again. Enrolment consumes a token use and records the agent in one
transaction, so two agents racing for the last use cannot both win.

``last_seen`` is kept in memory and flushed periodically: writing SQLite on every batch would cost
more than the batch itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from collector.ingest.ca import IssuedCert
from collector.sqlite_tx import immediate_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    site TEXT,
    uses_left INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    note TEXT
);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    site TEXT,
    os TEXT,
    version TEXT,
    cert_serial TEXT NOT NULL,
    cert_fingerprint TEXT NOT NULL,
    cert_not_after TEXT,
    token_id TEXT,
    enrolled_at TEXT NOT NULL,
    last_seen TEXT,
    revoked_at TEXT
);
"""


class TokenRefused(Exception):
    """Unknown, malformed, expired, revoked or used-up token (deliberately one error for all)."""


@dataclass(frozen=True)
class TokenRecord:
    id: str
    site: str | None
    uses_left: int
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    note: str | None

    def usable(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and self.uses_left > 0 and self.expires_at > now


@dataclass(frozen=True)
class AgentRecord:
    id: str
    hostname: str
    site: str | None
    os: str | None
    version: str | None
    cert_serial: str
    cert_fingerprint: str
    enrolled_at: dt.datetime
    last_seen: dt.datetime | None
    revoked_at: dt.datetime | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ts(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Registry:
    """Thread-safe access to the state database (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._seen: dict[str, dt.datetime] = {}
        self._skew: dict[str, float] = {}  # agent clock - collector clock, seconds (last batch); memory only

    def close(self) -> None:
        self.flush_last_seen()
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, immediate_transaction(self._db) as db:
            yield db

    # -- tokens --------------------------------------------------------------------------------
    def create_token(
        self, *, site: str | None, uses: int, ttl_seconds: float, note: str | None = None
    ) -> tuple[str, TokenRecord]:
        """Create a token; return its printable form (shown once) and its record."""
        if uses < 1:
            raise ValueError("a token needs at least one use")
        token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        now = _now()
        record = TokenRecord(token_id, site, uses, now, now + dt.timedelta(seconds=ttl_seconds), None, note)
        with self._tx() as db:
            db.execute(
                "INSERT INTO tokens (id, hash, site, uses_left, created_at, expires_at, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_id, _hash(secret), site, uses, _ts(now), _ts(record.expires_at), note),
            )
        return f"{token_id}.{secret}", record

    def list_tokens(self) -> list[TokenRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, site, uses_left, created_at, expires_at, revoked_at, note FROM tokens ORDER BY created_at"
            ).fetchall()
        return [
            TokenRecord(r[0], r[1], r[2], _parse(r[3]) or _now(), _parse(r[4]) or _now(), _parse(r[5]), r[6])
            for r in rows
        ]

    def revoke_token(self, token_id: str) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (_ts(_now()), token_id),
            )
            return cur.rowcount > 0

    # -- enrolment -----------------------------------------------------------------------------
    def enroll(
        self,
        token: str,
        *,
        hostname: str,
        os_name: str | None,
        version: str | None,
        issue: Callable[[str], IssuedCert],
    ) -> tuple[AgentRecord, IssuedCert]:
        """Consume one use of ``token``, issue a certificate via ``issue(agent_id)``, record the agent.

        All or nothing: if ``issue`` raises (a bad CSR), the token use is not consumed.
        """
        token_id, _, secret = token.strip().partition(".")
        if not token_id or not secret:
            raise TokenRefused("malformed token")
        now = _now()
        with self._tx() as db:
            row = db.execute(
                "SELECT hash, site, uses_left, expires_at, revoked_at FROM tokens WHERE id = ?", (token_id,)
            ).fetchone()
            if row is None or not hmac.compare_digest(row[0], _hash(secret)):
                raise TokenRefused("unknown token")
            expires = _parse(row[3])
            if row[4] is not None or row[2] < 1 or expires is None or expires <= now:
                raise TokenRefused("token expired, revoked or used up")
            agent_id = uuid.uuid4().hex
            cert = issue(agent_id)
            db.execute("UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ?", (token_id,))
            db.execute(
                "INSERT INTO agents (id, hostname, site, os, version, cert_serial, cert_fingerprint,"
                " cert_not_after, token_id, enrolled_at, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    agent_id,
                    hostname,
                    row[1],
                    os_name,
                    version,
                    cert.serial,
                    cert.fingerprint,
                    _ts(cert.not_after),
                    token_id,
                    _ts(now),
                    _ts(now),
                ),
            )
        agent = AgentRecord(agent_id, hostname, row[1], os_name, version, cert.serial, cert.fingerprint, now, now, None)
        return agent, cert

    # -- agents --------------------------------------------------------------------------------
    _AGENT_COLUMNS = (
        "id, hostname, site, os, version, cert_serial, cert_fingerprint, enrolled_at, last_seen, revoked_at"
    )

    @staticmethod
    def _agent(row: tuple[object, ...]) -> AgentRecord:
        return AgentRecord(
            str(row[0]),
            str(row[1]),
            row[2] if isinstance(row[2], str) else None,
            row[3] if isinstance(row[3], str) else None,
            row[4] if isinstance(row[4], str) else None,
            str(row[5]),
            str(row[6]),
            _parse(str(row[7])) or _now(),
            _parse(row[8] if isinstance(row[8], str) else None),
            _parse(row[9] if isinstance(row[9], str) else None),
        )

    def get_agent(self, agent_id: str) -> AgentRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {self._AGENT_COLUMNS} FROM agents WHERE id = ?", (agent_id,)).fetchone()
        if row is None:
            return None
        agent = self._agent(row)
        seen = self._seen.get(agent_id)
        if seen and (agent.last_seen is None or seen > agent.last_seen):
            agent = AgentRecord(**{**agent.__dict__, "last_seen": seen})
        return agent

    def list_agents(self) -> list[AgentRecord]:
        self.flush_last_seen()
        with self._lock:
            rows = self._db.execute(f"SELECT {self._AGENT_COLUMNS} FROM agents ORDER BY hostname").fetchall()
        return [self._agent(r) for r in rows]

    def revoke_agent(self, agent_id: str) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE agents SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (_ts(_now()), agent_id),
            )
            return cur.rowcount > 0

    def touch(self, agent_id: str, when: dt.datetime | None = None) -> None:
        """Record that an agent was heard from (in memory; see :meth:`flush_last_seen`)."""
        self._seen[agent_id] = when or _now()

    def note_clock_skew(self, agent_id: str, seconds: float) -> None:
        """Record how far the agent's clock is ahead (negative: behind) of ours, from its last batch."""
        self._skew[agent_id] = seconds

    def clock_skew_snapshot(self) -> dict[str, float]:
        """Last measured clock skew of every agent that sends ``X-Soc-Sent-At`` (older agents do not)."""
        return dict(self._skew)

    def last_seen_snapshot(self) -> dict[str, dt.datetime]:
        """Last-seen time of every agent (stored value overlaid with unflushed ones)."""
        with self._lock:
            rows = self._db.execute("SELECT id, last_seen FROM agents WHERE revoked_at IS NULL").fetchall()
        out = {r[0]: t for r in rows if (t := _parse(r[1])) is not None}
        for agent_id, seen in list(self._seen.items()):
            if agent_id in out and seen > out[agent_id]:
                out[agent_id] = seen
        return out

    def flush_last_seen(self) -> None:
        pending, self._seen = self._seen, {}
        if not pending:
            return
        with self._tx() as db:
            db.executemany(
                "UPDATE agents SET last_seen = ? WHERE id = ? AND (last_seen IS NULL OR last_seen < ?)",
                [(_ts(t), a, _ts(t)) for a, t in pending.items()],
            )
