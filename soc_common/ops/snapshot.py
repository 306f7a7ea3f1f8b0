"""Consistent copies of live databases: SQLite through its online backup API, PostgreSQL via pg_dump.

Copying a SQLite file (and its WAL) with ``cp`` while a service writes can capture a torn
database; the backup API copies a consistent snapshot inside a read transaction, which in WAL mode
does not block the running service's writers. PostgreSQL is dumped in pg_dump's custom format
(compressed, restorable table by table); the password travels in ``PGPASSWORD``, never on a
command line where ``ps`` would show it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import quote

SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


class SnapshotError(Exception):
    """A database could not be copied or restored; the message names it."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def is_sqlite_side_file(path: Path) -> bool:
    """``x.db-wal`` / ``-shm`` / ``-journal`` next to a database: covered by the database's snapshot."""
    for suffix in SQLITE_SIDE_FILES:
        if path.name.endswith(suffix) and is_sqlite(path.with_name(path.name[: -len(suffix)])):
            return True
    return False


def snapshot_sqlite(source: Path, target: Path) -> None:
    """Copy the live database ``source`` into ``target`` consistently and check the copy."""
    if not is_sqlite(source):
        raise SnapshotError(f"{source}: not a SQLite database")
    # No WAL index beside the file means no process has it open: read it as immutable so we leave
    # no root-owned -wal/-shm behind that the service's own user could not write to afterwards.
    idle = not Path(f"{source}-shm").exists() and not Path(f"{source}-wal").exists()
    mode = "immutable=1" if idle else "mode=ro"
    src = sqlite3.connect(f"file:{quote(str(source))}?{mode}", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # all pages in one step: one consistent read transaction
        dst.execute("PRAGMA journal_mode=DELETE")  # self-contained file, no WAL beside it
        result = dst.execute("PRAGMA quick_check").fetchone()
        if not result or result[0] != "ok":
            raise SnapshotError(f"{source}: the snapshot fails its integrity check: {result}")
    except sqlite3.Error as exc:
        raise SnapshotError(f"{source}: {exc}") from exc
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)


def sqlite_revision(path: Path) -> str | None:
    """The Alembic revision stamped in a SQLite SOC database, None when it has none."""
    con = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return str(row[0]) if row else None


def remove_sqlite_side_files(path: Path) -> None:
    """A stale WAL left beside a restored file would be replayed into it: remove it first."""
    for suffix in SQLITE_SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: from PATH, else the newest Debian PostgreSQL."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise SnapshotError(f"{name} not found: install the PostgreSQL client (Debian: postgresql-client)")


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries the password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def public_url(url: str) -> str:
    """The URL with its password removed, fit for a manifest or a log line."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(password=None).render_as_string(hide_password=False)


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=6 * 3600, check=False)
    except OSError as exc:
        raise SnapshotError(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        raise SnapshotError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def pg_dump(url: str, target: Path) -> None:
    conninfo, env = libpq_target(url)
    cmd = [pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-acl", f"--file={target}", conninfo]
    _run(cmd, env, f"pg_dump of {public_url(url)}")
    os.chmod(target, 0o600)


def pg_restore(url: str, dump: Path, *, clean: bool) -> None:
    """Load ``dump`` into the database at ``url``; ``clean`` drops the objects it replaces first."""
    conninfo, env = libpq_target(url)
    cmd = [pg_tool("pg_restore"), "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction"]
    if clean:
        cmd += ["--clean", "--if-exists"]
    cmd += [f"--dbname={conninfo}", str(dump)]
    _run(cmd, env, f"pg_restore into {public_url(url)}")


def pg_has_tables(url: str) -> bool:
    """Whether the database already holds tables in its public schema (restore would overwrite them)."""
    import psycopg

    conninfo, env = libpq_target(url)
    if "PGPASSWORD" in env:  # libpq reads the keyword like the variable; keeps it off the URI
        conninfo = psycopg.conninfo.make_conninfo(conninfo, password=env["PGPASSWORD"])
    try:
        with psycopg.connect(conninfo) as con:
            row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone()
    except psycopg.Error as exc:
        raise SnapshotError(f"{public_url(url)}: {exc}") from exc
    return bool(row and row[0])
