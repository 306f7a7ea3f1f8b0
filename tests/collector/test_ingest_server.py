"""The agent ingest endpoint over real TLS on loopback, backed by the real SQLite store."""

from __future__ import annotations

import gzip
import json
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from collector.ingest.ca import CertificateAuthority
from soc_common.ecs import get
from tests.collector.ingest_harness import Agent, Stack, make_csr, ndjson, post_events, sample_events, start_stack


# -- enrolment -------------------------------------------------------------------------------------
def test_enrol_issues_certificate_with_agent_id_and_records_agent(stack: Stack, tmp_path: Path) -> None:
    agent = Agent(stack, tmp_path / "a", "pc-01")
    resp = agent.enroll(stack.token(site="hn"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == body["agent_id"] != "pc-01"  # our subject, not the CSR's
    assert body["ca"] == stack.server.ca.pem
    record = stack.server.registry.get_agent(body["agent_id"])
    assert record is not None and record.hostname == "pc-01" and record.site == "hn"
    assert int(record.cert_serial, 16) == cert.serial_number


def test_single_use_token_cannot_be_reused(stack: Stack, tmp_path: Path) -> None:
    token = stack.token(uses=1)
    assert Agent(stack, tmp_path / "a", "pc-a").enroll(token).status_code == 200
    assert Agent(stack, tmp_path / "b", "pc-b").enroll(token).status_code == 401


def test_multi_use_token_counts_down(stack: Stack, tmp_path: Path) -> None:
    token = stack.token(uses=2)
    codes = [Agent(stack, tmp_path / f"h{i}", f"pc-{i}").enroll(token).status_code for i in range(3)]
    assert codes == [200, 200, 401]


def test_expired_revoked_and_unknown_tokens_refused(stack: Stack, tmp_path: Path) -> None:
    expired = stack.token(ttl=-1)
    revoked = stack.token()
    stack.server.registry.revoke_token(revoked.split(".")[0])
    for i, token in enumerate([expired, revoked, "nope.nope", "garbage"]):
        assert Agent(stack, tmp_path / f"x{i}", "pc").enroll(token).status_code == 401


def test_bad_csr_is_400_and_does_not_use_up_token(stack: Stack, tmp_path: Path) -> None:
    token = stack.token(uses=1)
    with httpx.Client(verify=ssl.create_default_context(cafile=str(stack.ca_file))) as client:
        resp = client.post(f"{stack.url}/v1/enroll", json={"token": token, "hostname": "h", "csr": "not a csr"})
    assert resp.status_code == 400
    assert Agent(stack, tmp_path / "a", "pc").enroll(token).status_code == 200


# -- shipping --------------------------------------------------------------------------------------
def test_batch_is_stored_with_agent_id_from_certificate(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path, site="dn")
    events = sample_events(5)
    events[0]["soc"] = {"agent_id": "forged-id"}  # identity from the body is never trusted
    resp = agent.ship(events)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    stored = stack.store.get([e["event"]["id"] for e in events])
    assert len(stored) == 5
    for ev in stored:
        assert get(ev, "soc.agent_id") == agent.agent_id
        assert get(ev, "soc.site") == "dn"
        assert str(get(ev, "event.ingested")).endswith("Z")


def test_duplicate_batch_counted_and_stored_once(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path)
    events = sample_events(10)
    assert agent.ship(events).json()["accepted"] == 10
    again = agent.ship(events, compress=True).json()
    assert again == {"accepted": 0, "duplicates": 10, "rejected": []}
    from collector.store.base import Query

    assert stack.store.count(Query()) == 10


def test_malformed_lines_rejected_by_index_good_ones_stored(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path)
    good = sample_events(3)
    lines: list[dict[str, object] | str] = [
        good[0],
        "{not json",
        good[1],
        '["a list"]',
        {"no": "id"},
        good[2],
    ]
    resp = agent.ship(lines)
    assert resp.status_code == 200
    body = resp.json()
    assert body["accepted"] == 3
    assert [r["index"] for r in body["rejected"]] == [1, 3, 4]
    assert "no event.id" in body["rejected"][2]["error"]
    assert len(stack.store.get([e["event"]["id"] for e in good])) == 3


def test_gzip_body_accepted(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path)
    assert agent.ship(sample_events(50), compress=True).json()["accepted"] == 50


def test_no_client_certificate_refused(stack: Stack) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(stack.ca_file))) as client:
        resp = post_events(client, stack.url, sample_events(1))
        assert resp.status_code == 401
        assert client.get(f"{stack.url}/v1/policy").status_code == 401
    assert stack.store.get(["e-0"]) == []


def test_revoked_agent_gets_403(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path)
    assert agent.ship(sample_events(1, "before")).status_code == 200
    assert stack.server.registry.revoke_agent(agent.agent_id)
    resp = agent.ship(sample_events(1, "after"))
    assert resp.status_code == 403
    assert stack.store.get(["after-0"]) == []


def test_certificate_from_another_ca_fails_handshake(stack: Stack, tmp_path: Path) -> None:
    rogue = CertificateAuthority(tmp_path / "rogue-ca")
    key, csr = make_csr()
    issued = rogue.issue_client(csr, "a" * 32, days=30)
    from cryptography.hazmat.primitives import serialization

    (tmp_path / "r.crt").write_text(issued.pem)
    (tmp_path / "r.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.create_default_context(cafile=str(stack.ca_file))
    ctx.load_cert_chain(tmp_path / "r.crt", tmp_path / "r.key")
    with (
        pytest.raises((ssl.SSLError, ConnectionError, OSError)),
        socket.create_connection(("127.0.0.1", stack.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        # TLS 1.3 reports the server's refusal of the client certificate on the first read.
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        if not tls.recv(1024):
            raise ConnectionError("closed without an answer")


def test_oversize_body_413_without_reading_it(tmp_path: Path) -> None:
    s = start_stack(tmp_path, max_request_bytes=1024)
    try:
        agent = s.agent(tmp_path)
        # Announce a huge body and send none of it: the answer must come from the headers alone.
        with (
            socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw,
            agent.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                b"Content-Length: 999999999\r\n\r\n"
            )
            head = tls.recv(4096).decode()
        assert head.startswith("HTTP/1.1 413")
        assert agent.ship(sample_events(1)).status_code == 200  # small batches still fine
    finally:
        s.server.stop()
        s.store.close()


def test_gzip_bomb_rejected_413(tmp_path: Path) -> None:
    s = start_stack(tmp_path, max_decompressed_bytes=100_000)
    try:
        agent = s.agent(tmp_path)
        bomb = gzip.compress(b"\n" * 5_000_000)  # ~5 KB on the wire, 5 MB inflated
        with agent.client() as client:
            resp = client.post(f"{s.url}/v1/events", content=bomb, headers={"Content-Encoding": "gzip"})
        assert resp.status_code == 413
    finally:
        s.server.stop()
        s.store.close()


def test_rate_limit_429_with_retry_after(tmp_path: Path) -> None:
    s = start_stack(tmp_path, rate_limit_eps=1, rate_limit_burst=5)
    try:
        agent = s.agent(tmp_path)
        first = agent.ship(sample_events(8, "a"))  # admitted: the bucket was full, now in debt
        assert first.status_code == 200
        second = agent.ship(sample_events(1, "b"))
        assert second.status_code == 429
        assert int(second.headers["Retry-After"]) >= 1
        assert s.store.get(["b-0"]) == []
    finally:
        s.server.stop()
        s.store.close()


def test_store_error_503_and_nothing_acknowledged(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path)
    stack.store.failing = True
    resp = agent.ship(sample_events(4))
    assert resp.status_code == 503
    assert "Retry-After" in resp.headers
    stack.store.failing = False
    assert stack.store.get([f"e-{i}" for i in range(4)]) == []
    assert agent.ship(sample_events(4)).json()["accepted"] == 4  # the retry delivers


def test_policy_layers_and_etag(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path, site="hn")
    pdir = stack.config.policy_dir
    pdir.mkdir(parents=True, exist_ok=True)
    (pdir / "default.toml").write_text("[shipper]\nbatch_size = 500\n[sources]\nfiles = true\n")
    (pdir / "site-hn.json").write_text(json.dumps({"shipper": {"batch_size": 100}}))
    (pdir / f"agent-{agent.agent_id}.toml").write_text("[sources]\nfiles = false\n")
    with agent.client() as client:
        resp = client.get(f"{stack.url}/v1/policy")
        assert resp.status_code == 200
        body = resp.json()
        assert body["policy"] == {"shipper": {"batch_size": 100}, "sources": {"files": False}}
        etag = resp.headers["ETag"]
        assert etag == f'"{body["version"]}"'
        again = client.get(f"{stack.url}/v1/policy", headers={"If-None-Match": etag})
        assert again.status_code == 304


def test_health_needs_no_certificate_and_reveals_nothing(stack: Stack) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(stack.ca_file))) as client:
        resp = client.get(f"{stack.url}/health")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"
    assert "token" not in resp.text and str(stack.config.data_dir) not in resp.text


def test_keep_alive_connection_serves_many_batches(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path)
    with agent.client() as client:
        for i in range(5):
            assert post_events(client, stack.url, sample_events(20, f"k{i}")).json()["accepted"] == 20
    assert stack.server.registry.get_agent(agent.agent_id).last_seen is not None  # type: ignore[union-attr]


def test_chunked_body_without_length_refused(stack: Stack, tmp_path: Path) -> None:
    agent = stack.agent(tmp_path)

    def chunks():  # type: ignore[no-untyped-def]
        yield ndjson(sample_events(1))

    with agent.client() as client:
        resp = client.post(f"{stack.url}/v1/events", content=chunks())
    assert resp.status_code == 411
