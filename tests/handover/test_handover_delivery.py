"""Delivery to the reference receiver over real HTTPS with mutual TLS on loopback."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.migrate import upgrade
from soc_api.db.session import begin_write, make_engine, make_session_factory
from soc_api.handover import outbox
from soc_api.handover.delivery import Deliverer, ReceiptError, backoff, check_receipt, mtls_client
from soc_api.handover.keys import KeyRing, PublicKeySet, generate_encryption_key, load_encryption_key
from soc_api.handover.models import HandoverReceipt, OutboxEntry
from soc_api.handover.package import new_package
from soc_api.handover.receiver import ReceiverConfig, create_receiver_app
from soc_api.handover.settings import HandoverSettings
from soc_api.handover.signing import sign
from soc_common.ecs import utc_now
from tests.handover.conftest import SITE, ServerThread, tls_options
from tests.handover.pki import Pki
from tests.handover.proxy import LossyProxy
from tests.handover.samples import all_records


@dataclass
class World:
    sessions: sessionmaker[Session]
    ring: KeyRing
    receiver: ReceiverConfig
    receiver_keys: PublicKeySet
    server: ServerThread
    pki: Pki
    tmp: Path
    encryption_public: str

    def settings(self, port: int | None = None, **extra: Any) -> HandoverSettings:
        return HandoverSettings(
            site=SITE,
            key_dir=self.ring.directory,
            endpoint=f"https://127.0.0.1:{port or self.server.port}/handover/v1",  # type: ignore[arg-type]
            client_cert=self.pki.client_cert,
            client_key=self.pki.client_key,
            ca_file=self.pki.ca_cert,
            receiver_keys=self.tmp / "receiver-keys.json",
            backoff_base=0.01,
            backoff_max=0.05,
            max_attempts=3,
            **extra,
        )

    def deliverer(self, port: int | None = None, **extra: Any) -> Deliverer:
        return Deliverer(self.settings(port, **extra), self.sessions, self.receiver_keys)

    def enqueue(self, kind: str = "incident_report") -> OutboxEntry:
        with self.sessions() as s, s.begin():
            begin_write(s)
            return outbox.enqueue(s, site=SITE, package_type=kind, record=all_records()[kind], key=self.ring.current())

    def entry(self, package_id: str) -> OutboxEntry:
        with self.sessions() as s:
            row = s.get(OutboxEntry, package_id)
            assert row is not None
            return row


@pytest.fixture
def world(tmp_path: Path, ring: KeyRing, pki: Pki) -> Iterator[World]:
    url = f"sqlite:///{tmp_path / 'soc.db'}"
    upgrade(url)
    engine = make_engine(url)
    receiver_ring = KeyRing(tmp_path / "receiver-keys")
    receiver_ring.generate("central")
    (tmp_path / "receiver-keys.json").write_text(__import__("json").dumps(receiver_ring.public_set().to_json()))
    enc_public = generate_encryption_key(tmp_path / "receiver-x25519.pem")
    config = ReceiverConfig(
        db_url=f"sqlite:///{tmp_path / 'centre.db'}",
        key_dir=receiver_ring.directory,
        site_keys={SITE: ring.public_set()},
        encryption_key=load_encryption_key(tmp_path / "receiver-x25519.pem"),
    )
    with ServerThread(create_receiver_app(config), **tls_options(pki, client_certs=True)) as server:
        yield World(
            make_session_factory(engine), ring, config, receiver_ring.public_set(), server, pki, tmp_path, enc_public
        )
    engine.dispose()


def test_push_pass_delivers_and_stores_a_verified_receipt(world: World) -> None:
    entry = world.enqueue()
    result = world.deliverer().push_pass()
    assert (result.acknowledged, result.retrying, result.failed) == (1, 0, 0)
    done = world.entry(entry.package_id)
    assert done.status == "acknowledged" and done.attempts == 1
    with world.sessions() as s:
        receipt = s.get(HandoverReceipt, entry.package_id)
        assert receipt is not None
        check_receipt(receipt.receipt, world.receiver_keys, entry.package_id, entry.sha256)
    assert world.receiver.stats["stored"] == 1


def test_exactly_once_when_the_answer_is_lost(world: World) -> None:
    entry = world.enqueue()
    proxy = LossyProxy(world.server.port, drop_when=lambda: world.receiver.stats["stored"] >= 1)
    try:
        deliverer = world.deliverer(port=proxy.port)
        assert deliverer.deliver(entry.package_id) == "retrying"  # stored, but the answer was cut
        assert proxy.dropped == 1 and world.receiver.stats["stored"] == 1
        assert world.entry(entry.package_id).status == "queued"
        assert deliverer.deliver(entry.package_id) == "acknowledged"  # the retry gets the receipt
    finally:
        proxy.close()
    assert world.receiver.stats == {"stored": 1, "duplicates": 1, "rejected": 0}
    with world.sessions() as s:
        receipt = s.get(HandoverReceipt, entry.package_id)
        assert receipt is not None
    client = mtls_client(world.settings())
    gaps = client.get(f"https://127.0.0.1:{world.server.port}/handover/v1/sites/{SITE}/gaps").json()
    assert gaps == {"site": SITE, "last_sequence": 1, "missing": []}
    assert world.entry(entry.package_id).attempts == 2


def test_receiver_names_sequence_gaps_until_filled(world: World) -> None:
    first, second, third = world.enqueue(), world.enqueue("kpi_snapshot"), world.enqueue("alert_summary")
    deliverer = world.deliverer()
    assert deliverer.deliver(first.package_id) == "acknowledged"
    assert deliverer.deliver(third.package_id) == "acknowledged"
    with world.sessions() as s:
        row = s.get(HandoverReceipt, third.package_id)
        assert row is not None and row.receipt["missing_sequences"] == [2]
    assert deliverer.deliver(second.package_id) == "acknowledged"
    with world.sessions() as s:
        row = s.get(HandoverReceipt, second.package_id)
        assert row is not None and row.receipt["missing_sequences"] == []


def test_encrypted_delivery(world: World) -> None:
    entry = world.enqueue()
    deliverer = world.deliverer(receiver_encryption_key=world.encryption_public)
    assert b"Malware" not in deliverer._body(entry.document)
    assert deliverer.push_pass().acknowledged == 1


def test_receipt_signed_by_another_key_is_not_accepted(world: World, tmp_path: Path) -> None:
    entry = world.enqueue()
    impostor = KeyRing(tmp_path / "impostor")
    impostor.generate("central")
    deliverer = Deliverer(world.settings(), world.sessions, impostor.public_set())
    assert deliverer.deliver(entry.package_id) == "retrying"
    assert "receipt refused" in (world.entry(entry.package_id).last_error or "")
    with pytest.raises(ReceiptError):
        check_receipt({"kind": "receipt"}, world.receiver_keys, entry.package_id, entry.sha256)


@pytest.mark.parametrize("cert", ["none", "rogue"])
def test_client_without_a_trusted_certificate_is_refused(world: World, cert: str) -> None:
    settings = world.settings()
    if cert == "none":
        settings = settings.model_copy(update={"client_cert": None, "client_key": None})
    else:
        settings = settings.model_copy(update={"client_cert": world.pki.rogue_cert, "client_key": world.pki.rogue_key})
    client = mtls_client(settings)
    with pytest.raises(httpx.HTTPError):
        client.post(f"https://127.0.0.1:{world.server.port}/handover/v1/packages", content=b"{}").raise_for_status()
    assert world.receiver.stats["stored"] == 0


def test_receiver_refuses_tampered_unregistered_and_garbage(world: World) -> None:
    client = mtls_client(world.settings())
    url = f"https://127.0.0.1:{world.server.port}/handover/v1/packages"
    good = sign(
        new_package("kpi_snapshot", all_records()["kpi_snapshot"], site=SITE, sequence=1, created=utc_now()),
        world.ring.current(),
    )
    tampered = {**good, "payload": {**good["payload"], "alerts_total": 1}}
    other_site = sign({**{k: v for k, v in good.items() if k != "signature"}, "site": "hcm"}, world.ring.current())
    assert client.post(url, json=tampered).status_code == 422
    assert client.post(url, json=other_site).status_code == 403
    assert client.post(url, content=b"\xff{not json").status_code == 422
    assert client.post(url, json=[1, 2]).status_code == 422
    assert client.post(url, json=good).status_code == 201  # bad input did not break the receiver
    changed = sign(
        {**{k: v for k, v in good.items() if k != "signature"}, "payload": tampered["payload"]}, world.ring.current()
    )
    assert client.post(url, json=changed).status_code == 409  # same id, other content: no receipt
    assert world.receiver.stats["rejected"] == 5 and world.receiver.stats["stored"] == 1


def test_unreachable_receiver_backs_off_then_fails(world: World) -> None:
    entry = world.enqueue()
    deliverer = world.deliverer(port=1)  # nothing listens on port 1
    assert deliverer.deliver(entry.package_id) == "retrying"
    first_wait = world.entry(entry.package_id).next_attempt_at
    assert first_wait is not None and first_wait > utc_now() - timedelta(seconds=1)
    assert deliverer.deliver(entry.package_id) == "retrying"
    assert deliverer.deliver(entry.package_id) == "failed"  # max_attempts = 3
    assert world.entry(entry.package_id).status == "failed"
    with world.sessions() as s, s.begin():
        begin_write(s)
        assert outbox.requeue(s, entry.package_id, "tester") is not None
    assert world.deliverer().deliver(entry.package_id) == "acknowledged"


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    rng = random.Random(7)
    waits = [backoff(n, 10, 3600, rng).total_seconds() for n in range(1, 12)]
    for n, wait in enumerate(waits, start=1):
        ceiling = min(3600, 10 * 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling
    assert waits[-1] <= 3600 and waits[4] > waits[0]


def test_jobs_report_serious_incidents_at_once_and_build_periodic_packages_once(world: World) -> None:
    from datetime import date

    from soc_api.db.models import Incident
    from soc_api.handover.delivery import HandoverJobs, build_scheduler

    with world.sessions() as s, s.begin():
        begin_write(s)
        s.add_all(
            [
                Incident(title="Ransomware", category="malware", severity="serious", created_by="officer"),
                Incident(title="Port scan", category="recon", severity="normal", created_by="officer"),
            ]
        )
    jobs = HandoverJobs(world.settings(), world.sessions, world.deliverer())
    assert jobs.report_serious_incidents() == 1  # only the serious one
    assert world.receiver.stats["stored"] == 1  # pushed at once, not at the next interval
    assert jobs.report_serious_incidents() == 0  # never twice
    assert jobs.daily_summary(date(2026, 3, 2)) is True
    assert jobs.daily_summary(date(2026, 3, 2)) is False
    assert jobs.quarterly_kpi(date(2026, 4, 1)) is True
    with world.sessions() as s:
        subjects = {e.subject for e in s.query(OutboxEntry)}
    assert subjects == {"incident:1", "alert_summary:2026-03-01", "kpi_snapshot:2026-01-01"}
    assert jobs.push() is not None and world.receiver.stats["stored"] == 3
    scheduler = build_scheduler(jobs)
    assert {j.id for j in scheduler.get_jobs()} == {
        "handover-daily-summary",
        "handover-quarterly-kpi",
        "handover-urgent",
        "handover-push",
    }
