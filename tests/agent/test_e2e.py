"""End to end against the real collector ingest server: enrol, ship, refuse, survive outages and restarts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agent.enroll import Credentials, EnrollError, enroll
from agent.plugins import PluginRegistry
from agent.runtime import Agent
from agent.shipper import CollectorError, Shipper
from agent.spool import Spool
from soc_common.ecs import new_event, stable_event_id
from tests.agent.support import Collector, agent_config, wait_until


def numbered(n: int, start: int = 0, prefix: str = "x") -> list[dict]:
    out = []
    for i in range(start, start + n):
        event = new_event(dataset="test.e2e", event_id=stable_event_id(prefix, i))
        event["message"] = f"{prefix}-{i}"
        out.append(event)
    return out


def position(state: Path) -> int:
    try:
        return int(state.read_text())
    except (OSError, ValueError):
        return 0


def enrolled(collector: Collector, data_dir: Path, hostname: str = "pc-01") -> Credentials:
    return enroll(collector.url, collector.token(), data_dir, ca_fingerprint=collector.fingerprint, hostname=hostname)


def test_enrol_with_fingerprint_then_ship(collector: Collector, tmp_path: Path) -> None:
    creds = enrolled(collector, tmp_path / "agent")
    assert creds.agent_id
    assert (creds.key_path.stat().st_mode & 0o777) == 0o600
    assert creds.ca_path.read_text() == collector.ca_file.read_text()
    spool = Spool(tmp_path / "agent" / "spool", agent_config(tmp_path).spool)
    shipper = Shipper(spool, agent_config(tmp_path).shipping, collector.url, creds.ssl_context)
    spool.append(numbered(250))
    assert shipper.drain(threading.Event(), timeout=20)
    assert collector.count() == 250
    assert shipper.status()["acked"] == 250
    stored = collector.store.get([stable_event_id("x", 0)])
    assert stored[0]["soc"]["agent_id"] == creds.agent_id  # the collector identified us by certificate


def test_enrol_with_ca_file(collector: Collector, tmp_path: Path) -> None:
    creds = enroll(collector.url, collector.token(), tmp_path / "a", ca_file=collector.ca_file)
    assert Credentials.load(tmp_path / "a") == creds


def test_enrol_without_pin_needs_confirmation(collector: Collector, tmp_path: Path) -> None:
    seen: list[str] = []
    with pytest.raises(EnrollError, match="fingerprint"):
        enroll(collector.url, collector.token(), tmp_path / "a", confirm=lambda fp: bool(seen.append(fp)))  # type: ignore[func-returns-value]
    assert seen and seen[0].replace(":", "").lower() == collector.fingerprint
    assert Credentials.load(tmp_path / "a") is None
    creds = enroll(collector.url, collector.token(), tmp_path / "a", confirm=lambda fp: True)
    assert creds.agent_id


def test_wrong_ca_pin_is_refused(collector: Collector, tmp_path: Path) -> None:
    with pytest.raises(EnrollError, match="does not match"):
        enroll(collector.url, collector.token(), tmp_path / "a", ca_fingerprint="ab" * 32)
    assert Credentials.load(tmp_path / "a") is None


def test_wrong_ca_file_fails_tls(collector: Collector, tmp_path: Path) -> None:
    from collector.ingest.ca import CertificateAuthority

    other = CertificateAuthority(tmp_path / "other-ca")
    with pytest.raises(EnrollError, match=r"pinned CA|certificate"):
        enroll(collector.url, collector.token(), tmp_path / "a", ca_file=other.cert_path)


def test_shipping_with_a_different_pinned_ca_fails(collector: Collector, tmp_path: Path) -> None:
    from collector.ingest.ca import CertificateAuthority

    creds = enrolled(collector, tmp_path / "agent")
    other = CertificateAuthority(tmp_path / "other-ca")
    creds.ca_path.write_text(other.cert_path.read_text())  # an attacker's or stale pin
    spool = Spool(tmp_path / "spool", agent_config(tmp_path).spool)
    spool.append(numbered(3))
    shipper = Shipper(spool, agent_config(tmp_path).shipping, collector.url, creds.ssl_context)
    with pytest.raises(CollectorError, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        shipper.ship_once(threading.Event())
    assert collector.count() == 0 and spool.pending_events == 3


def test_bad_token_is_refused(collector: Collector, tmp_path: Path) -> None:
    with pytest.raises(EnrollError, match="refused the enrolment token"):
        enroll(collector.url, "not-a-token", tmp_path / "a", ca_fingerprint=collector.fingerprint)


def test_unenrolled_agent_cannot_ship(collector: Collector, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", agent_config(tmp_path).spool)
    spool.append(numbered(2))
    shipper = Shipper(spool, agent_config(tmp_path).shipping, collector.url, lambda: None)
    with pytest.raises(CollectorError, match="not enrolled"):
        shipper.ship_once(threading.Event())
    # with the CA but no client certificate the collector refuses too
    from agent.enroll import client_context

    shipper = Shipper(spool, agent_config(tmp_path).shipping, collector.url, lambda: client_context(collector.ca_file))
    with pytest.raises(CollectorError, match="401"):
        shipper.ship_once(threading.Event())
    assert spool.pending_events == 2


def test_revoked_agent_is_refused_and_keeps_its_data(collector: Collector, tmp_path: Path) -> None:
    creds = enrolled(collector, tmp_path / "agent")
    collector.registry.revoke_agent(creds.agent_id)
    spool = Spool(tmp_path / "spool", agent_config(tmp_path).spool)
    spool.append(numbered(5))
    shipper = Shipper(spool, agent_config(tmp_path).shipping, collector.url, creds.ssl_context)
    with pytest.raises(CollectorError, match="403"):
        shipper.ship_once(threading.Event())
    assert spool.pending_events == 5 and collector.count() == 0


def test_store_outage_503_is_retried_without_loss(collector: Collector, tmp_path: Path) -> None:
    creds = enrolled(collector, tmp_path / "agent")
    spool = Spool(tmp_path / "spool", agent_config(tmp_path).spool)
    shipper = Shipper(spool, agent_config(tmp_path).shipping, collector.url, creds.ssl_context)
    spool.append(numbered(50))
    collector.store.failing = True
    with pytest.raises(CollectorError) as err:
        shipper.ship_once(threading.Event())
    assert err.value.retry_after == 5.0  # Retry-After honoured
    collector.store.failing = False
    assert shipper.drain(threading.Event(), timeout=20)
    assert collector.count() == 50


def test_collector_down_then_back_every_event_exactly_once(
    collector: Collector, tmp_path: Path, plugins: PluginRegistry
) -> None:
    enrolled(collector, tmp_path / "agent")
    config = agent_config(
        tmp_path,
        collector_url=collector.url,
        sources=[{"type": "counting", "name": "c", "total": 600, "batch": 20}],
    )
    stop = threading.Event()
    agent = Agent(config, plugins=plugins)
    collector.stop()  # down before the agent even starts
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: agent.spool.pending_events >= 600, timeout=20)
        assert wait_until(lambda: agent.shipper.retries >= 2, timeout=10)
        collector.restart()
        assert wait_until(lambda: agent.spool.pending_events == 0, timeout=30)
    finally:
        stop.set()
        thread.join(30)
    ids = [i for i in collector.ids() if i in {stable_event_id("c", k) for k in range(600)}]
    assert len(ids) == 600 and len(set(ids)) == 600


def test_agent_restart_mid_stream_loses_nothing(collector: Collector, tmp_path: Path, plugins: PluginRegistry) -> None:
    from tests.agent.support import CountingSource

    enrolled(collector, tmp_path / "agent")
    config = agent_config(
        tmp_path,
        collector_url=collector.url,
        sources=[{"type": "counting", "name": "c", "total": 3000, "batch": 50, "delay": 0.01}],
    )
    state = tmp_path / "source.pos"
    original_init = CountingSource.__init__

    def init_with_state(self: CountingSource, name: str, settings: object) -> None:
        original_init(self, name, settings)  # type: ignore[arg-type]
        self.state_file = state

    CountingSource.__init__ = init_with_state  # type: ignore[method-assign]
    try:
        for run in range(2):  # the first run is stopped mid-stream, the second finishes
            stop = threading.Event()
            agent = Agent(config, plugins=plugins)
            thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
            thread.start()
            try:
                assert wait_until(lambda: position(state) >= 1000, timeout=20)
                if run == 0:
                    assert position(state) < 3000, "the source finished before the restart"
                else:
                    done = lambda spool=agent.spool: position(state) >= 3000 and spool.pending_events == 0  # noqa: E731
                    assert wait_until(done, timeout=30)
            finally:
                stop.set()
                thread.join(30)
    finally:
        CountingSource.__init__ = original_init  # type: ignore[method-assign]
    wanted = {stable_event_id("c", k) for k in range(3000)}
    stored = [i for i in collector.ids() if i in wanted]
    assert set(stored) == wanted
    assert len(stored) == len(wanted)  # duplicates (re-sent after the restart) were dropped by id


def test_rate_limit_429_is_honoured(tmp_path: Path) -> None:
    from tests.agent.support import _start_collector

    slow = _start_collector(tmp_path, rate_limit_eps=200, rate_limit_burst=100)
    try:
        creds = enrolled(slow, tmp_path / "agent")
        settings = agent_config(tmp_path, shipping={"batch_max_events": 100}).shipping
        spool = Spool(tmp_path / "spool", agent_config(tmp_path).spool)
        shipper = Shipper(spool, settings, slow.url, creds.ssl_context)
        spool.append(numbered(300))
        assert shipper.drain(threading.Event(), timeout=30)
        assert slow.count() == 300
        assert shipper.retries >= 1  # at least one 429 on the way
    finally:
        slow.server.stop()
        slow.registry.close()
        slow.store.close()
