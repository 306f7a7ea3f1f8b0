"""A throw-away PostgreSQL server for tests, started from Debian's binaries.

The server runs as the ``postgres`` system user (PostgreSQL refuses to run as root), in a
temporary directory, listening on a free port on 127.0.0.1 and on a unix socket inside that
directory, with trust authentication limited to those two. When the binaries are missing and we
are root, the Debian package is installed; otherwise the tests are skipped with the reason, except
under ``CI=true`` where a missing server fails loudly.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

RUN_AS = "postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bin_dir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _install() -> Path | None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=False, env=env, capture_output=True)
    return find_bin_dir()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{RUN_AS}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, RUN_AS, RUN_AS)
            shutil.chown(self.socket_dir, RUN_AS, RUN_AS)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            RUN_AS,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.socket_dir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-o",
            opts,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    def _admin(self, statement: str) -> None:
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user={RUN_AS} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(statement.encode())

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database`, ending its leftover connections."""
        name = url.rsplit("/", 1)[-1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server for the duration of the block (skip, or fail under CI, when impossible)."""
    bin_dir = find_bin_dir() or _install()
    if bin_dir is None:
        _unavailable("no /usr/lib/postgresql/*/bin/initdb and cannot install it (not root or no apt-get)")
        raise AssertionError("unreachable")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(RUN_AS)
        except KeyError:
            _unavailable(f"system user {RUN_AS!r} missing")
    root = Path(tempfile.mkdtemp(prefix="soc-pg-"))
    server = PostgresServer(bin_dir=bin_dir, root=root, port=_free_port())
    try:
        try:
            server.start()
        except subprocess.CalledProcessError as exc:
            log = server.root / "server.log"
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            _unavailable(f"server did not start: {exc.stderr or exc}\n{detail}")
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def postgres_server_fixture() -> Iterator[PostgresServer]:
    """Body of a session-scoped fixture: ``yield from postgres_server_fixture()``."""
    with running_postgres() as server:
        yield server


def database_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Body of the ``db_url`` fixture parametrised over ``["sqlite", "postgresql"]``.

    Each test gets an empty database: a new SQLite file, or a new PostgreSQL database dropped
    afterwards (so a long run does not leave hundreds of databases for the server to shut down).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'soc.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)
