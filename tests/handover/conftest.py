"""Fixtures: the SOC database (SQLite and PostgreSQL), a site key ring, a test PKI for mutual
TLS, and real uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.migrate import upgrade
from soc_api.db.session import make_engine, make_session_factory
from soc_api.handover.keys import KeyRing

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.handover.pki import Pki, make_pki  # noqa: E402
from tests.helpers.db_fixtures import db_url  # noqa: E402

__all__ = ["db_url"]

SITE = "hn"


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    r = KeyRing(tmp_path / "site-keys")
    r.generate(SITE)
    return r


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class ServerThread:
    """A uvicorn server on 127.0.0.1, on a port the OS picked, in a background thread."""

    def __init__(self, app: Any, **ssl_options: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, timeout_keep_alive=1, **ssl_options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.server.force_exit = True  # do not wait for idle keep-alive connections
        self.thread.join(timeout=10)
        self.sock.close()


def tls_options(pki: Pki, *, client_certs: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"ssl_certfile": str(pki.server_cert), "ssl_keyfile": str(pki.server_key)}
    if client_certs:
        options.update(ssl_ca_certs=str(pki.ca_cert), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options
