"""``soc central serve`` as a real process over mutual TLS, fed by the sending side's Deliverer."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from soc_api.db.migrate import upgrade
from soc_api.db.models import AuditEntry
from soc_api.db.session import begin_write, make_engine, make_session_factory
from soc_api.handover import outbox
from soc_api.handover.central import _ranges, app
from soc_api.handover.delivery import Deliverer, mtls_client
from soc_api.handover.keys import KeyRing
from soc_api.handover.models import HandoverReceipt, OutboxEntry
from soc_api.handover.receiver import ReceivedPackage
from soc_api.handover.settings import HandoverSettings
from soc_api.services import audit
from soc_common.ecs import utc_now
from tests.handover.conftest import SITE
from tests.handover.pki import Pki
from tests.handover.samples import all_records

ROOT = Path(__file__).resolve().parents[2]
SERVE = "import sys; from soc_api.handover.central import app; app(['serve', '--config', sys.argv[1]])"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fingerprint(pem: Path) -> str:
    return hashlib.sha256(x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(Encoding.DER)).hexdigest()


@dataclass
class Centre:
    tmp: Path
    config: Path
    port: int
    pki: Pki
    ring: KeyRing
    sessions: sessionmaker[Session]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(self.config)], cwd=ROOT, stderr=subprocess.PIPE, env=dict(os.environ)
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"central serve exited: {self.proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("central serve did not listen")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def settings(self, **extra: Any) -> HandoverSettings:
        values: dict[str, Any] = {
            "site": SITE,
            "key_dir": self.ring.directory,
            "endpoint": f"https://127.0.0.1:{self.port}/handover/v1",
            "client_cert": self.pki.client_cert,
            "client_key": self.pki.client_key,
            "ca_file": self.pki.ca_cert,
            "receiver_keys": self.tmp / "central-public.json",
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "max_attempts": 50,
            "timeout": 5,
        }
        values.update(extra)
        return HandoverSettings.model_validate(values)

    def deliverer(self) -> Deliverer:
        keys = KeyRing(self.tmp / "central-keys").public_set()
        return Deliverer(self.settings(), self.sessions, keys)

    def enqueue(self, n: int) -> list[str]:
        ids = []
        for _ in range(n):
            with self.sessions() as s, s.begin():
                begin_write(s)
                record = all_records()["incident_report"]
                ids.append(
                    outbox.enqueue(
                        s, site=SITE, package_type="incident_report", record=record, key=self.ring.current()
                    ).package_id
                )
        return ids

    def held(self) -> list[int]:
        engine = make_engine(f"sqlite:///{self.tmp / 'central.db'}")
        try:
            with Session(engine) as s:
                return list(s.scalars(select(ReceivedPackage.sequence).order_by(ReceivedPackage.sequence)))
        finally:
            engine.dispose()

    def cli(self, *args: str) -> Any:
        result = CliRunner().invoke(app, [*args, "--config", str(self.config)])
        assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def centre(tmp_path: Path, pki: Pki, ring: KeyRing) -> Iterator[Centre]:
    soc_url = f"sqlite:///{tmp_path / 'soc.db'}"
    upgrade(soc_url)
    engine = make_engine(soc_url)
    central_ring = KeyRing(tmp_path / "central-keys")
    central_ring.generate("central")
    (tmp_path / "central-public.json").write_text(json.dumps(central_ring.public_set().to_json()))
    (tmp_path / "site-public.json").write_text(json.dumps(ring.public_set().to_json()))
    port = _free_port()
    config = tmp_path / "central.toml"
    config.write_text(
        "[central]\n"
        f'db_url = "sqlite:///{tmp_path / "central.db"}"\n'
        'key_dir = "central-keys"\nsites_file = "sites.json"\n'
        f'host = "127.0.0.1"\nport = {port}\n'
        f'tls_cert = "{pki.server_cert}"\ntls_key = "{pki.server_key}"\nclient_ca = "{pki.ca_cert}"\n'
    )
    c = Centre(tmp_path, config, port, pki, ring, make_session_factory(engine))
    c.cli("sites", "add", SITE, "--public-key", str(tmp_path / "site-public.json"),
          "--cert-fingerprint", _fingerprint(pki.client_cert))  # fmt: skip
    try:
        yield c
    finally:
        c.kill()
        engine.dispose()


def test_push_stores_receipts_and_status_shows_sequence_and_gaps(centre: Centre) -> None:
    centre.start()
    first, second, third = centre.enqueue(3)
    deliverer = centre.deliverer()
    assert deliverer.deliver(first) == "acknowledged"
    assert deliverer.deliver(third) == "acknowledged"
    with centre.sessions() as s:
        receipt = s.get(HandoverReceipt, third)
        assert receipt is not None and receipt.receipt["missing_sequences"] == [2]
    status = json.loads(centre.cli("status", "--json").output)
    assert status == [
        {
            "site": SITE,
            "last_sequence": 3,
            "missing": [2],
            "last_received": status[0]["last_received"],
            "counts": {"incident_report": 2},
        }
    ]
    assert status[0]["last_received"] is not None
    assert "2" in centre.cli("status").output
    assert deliverer.deliver(second) == "acknowledged"
    client = mtls_client(centre.settings())
    live = client.get(f"https://127.0.0.1:{centre.port}/handover/v1/sites/{SITE}/status").json()
    assert (live["last_sequence"], live["missing"], live["counts"]) == (3, [], {"incident_report": 3})


def test_kill_9_mid_transfer_then_restart_stores_each_package_once(centre: Centre) -> None:
    ids = centre.enqueue(25)
    centre.start()
    deliverer = centre.deliverer()
    passing = threading.Thread(target=deliverer.push_pass, daemon=True)
    passing.start()
    deadline = time.monotonic() + 30
    while len(centre.held()) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    centre.kill()
    passing.join(60)
    stored_before_restart = len(centre.held())
    assert 3 <= stored_before_restart < 25, "the kill did not land mid-transfer"
    centre.start()
    later = utc_now() + timedelta(hours=1)
    for _ in range(5):
        if deliverer.push_pass(now=later).acknowledged == 0:
            break
    assert centre.held() == list(range(1, 26))
    with centre.sessions() as s:
        statuses = {e.status for e in s.scalars(select(OutboxEntry).where(OutboxEntry.package_id.in_(ids)))}
    assert statuses == {"acknowledged"}
    engine = make_engine(f"sqlite:///{centre.tmp / 'central.db'}")
    try:
        with Session(engine) as s:
            assert audit.verify(s).ok
            received = s.scalar(select(func.count()).where(AuditEntry.action == "handover.received"))
            assert received == 25
    finally:
        engine.dispose()


@pytest.mark.parametrize("cert", ["none", "rogue"])
def test_client_without_a_site_certificate_is_refused_at_tls(centre: Centre, cert: str) -> None:
    centre.start()
    context = ssl.create_default_context(cafile=str(centre.pki.ca_cert))
    if cert == "rogue":
        context.load_cert_chain(str(centre.pki.rogue_cert), str(centre.pki.rogue_key))
    with (
        pytest.raises((ssl.SSLError, ConnectionError, httpx.TransportError)),
        httpx.Client(verify=context, timeout=5) as client,
    ):
        client.get(f"https://127.0.0.1:{centre.port}/handover/v1/keys")
    assert centre.held() == []


def test_certificate_of_another_site_is_refused_and_audited(centre: Centre) -> None:
    (package_id,) = centre.enqueue(1)
    centre.cli("sites", "add", SITE, "--public-key", str(centre.tmp / "site-public.json"),
               "--cert-fingerprint", _fingerprint(centre.pki.server_cert))  # fmt: skip
    centre.start()
    assert centre.deliverer().deliver(package_id) == "failed"  # 403: a refusal, not a retry
    assert centre.held() == []
    engine = make_engine(f"sqlite:///{centre.tmp / 'central.db'}")
    try:
        with Session(engine) as s:
            (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.action == "handover.refused"))
            assert entry.after is not None and entry.after["status"] == 403
            assert entry.after["client_cert_sha256"] == _fingerprint(centre.pki.client_cert)
    finally:
        engine.dispose()


def test_gap_ranges_read_compactly() -> None:
    assert _ranges([]) == "-"
    assert _ranges([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"
