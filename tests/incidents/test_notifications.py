"""Notifications delivered to a real SMTP server (aiosmtpd, STARTTLS + AUTH) and a real HTTPS
webhook receiver on loopback, with a failure on the first try of each and the retry succeeding."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_string
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from fastapi.testclient import TestClient
from sqlalchemy import select

from soc_api.app import create_app
from soc_api.notifications.dispatch import deliver_due, run_once
from soc_api.notifications.models import OutboxMessage
from soc_api.notifications.scheduler import notification_job, settings_of
from soc_api.notifications.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from soc_common.ecs import utc_now
from tests.handover.pki import Pki, make_pki
from tests.helpers.api_world import Api
from tests.incidents.world import incident_config, seed

SMTP_USER, SMTP_PASSWORD = "soc-mailer", "smtp-mật-khẩu-bí-mật"
HOOK_SECRET = "w" * 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MailSink:
    fail_first: int = 1
    messages: list[tuple[list[str], str]] = field(default_factory=list)
    calls: int = 0

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Envelope) -> str:
        self.calls += 1
        if self.calls <= self.fail_first:
            return "451 4.3.0 try again later"
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.messages.append((list(envelope.rcpt_tos), content.decode("utf-8", "replace")))
        return "250 OK"


def _authenticator(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword) and data.login == SMTP_USER.encode() and data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    folder = tmp_path / "pki"
    folder.mkdir()
    return make_pki(folder)


@pytest.fixture
def smtp(pki: Pki) -> Iterator[tuple[MailSink, int]]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    sink = MailSink()
    port = _free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
        authenticator=_authenticator, auth_required=True,
    )  # fmt: skip
    controller.start()
    yield sink, port
    controller.stop()


@dataclass
class HookSink:
    fail_first: int = 1
    calls: int = 0
    bodies: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def webhook(pki: Pki) -> Iterator[tuple[HookSink, int]]:
    sink = HookSink()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            sink.calls += 1
            if sink.calls <= sink.fail_first:
                self.send_response(503)
            else:
                sink.bodies.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sink, int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def notified(
    db_url: str, tmp_path: Path, pki: Pki, smtp: tuple[MailSink, int], webhook: tuple[HookSink, int]
) -> Iterator[Api]:
    config = incident_config(
        db_url, tmp_path,
        notifications={
            "email": {"host": "127.0.0.1", "port": smtp[1], "security": "starttls", "username": SMTP_USER,
                      "password": SMTP_PASSWORD, "sender": "soc@tinhuy.example", "ca_file": str(pki.ca_cert),
                      "timeout_seconds": 10},
            "webhooks": [{"name": "central", "url": f"https://127.0.0.1:{webhook[1]}/hook", "secret": HOOK_SECRET,
                          "ca_file": str(pki.ca_cert), "timeout_seconds": 10}],
            "backoff_base_seconds": 60,
        },
    )  # fmt: skip
    app = create_app(config)
    world = seed(app.state.soc)
    world.client = TestClient(app, base_url="https://testserver")
    with world.client:
        yield world


def _outbox(world: Api) -> list[OutboxMessage]:
    with world.state.sessions() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_alerts_reach_smtp_and_webhook_with_retry(
    notified: Api, smtp: tuple[MailSink, int], webhook: tuple[HookSink, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = settings_of(notified.state)
    first = run_once(notified.state.sessions, settings)
    # 3 high/critical alerts: hn-q1 x2 -> admin + officer_hn, hcm -> admin + officer_hcm; + 3 webhook posts
    assert first.queued == 9
    assert first.sent == 7 and first.retrying == 2 and first.dead == 0
    failed = [m for m in _outbox(notified) if m.state == "pending"]
    assert {m.channel for m in failed} == {"email", "webhook"}
    assert all(m.attempts == 1 and m.last_error for m in failed), [(m.attempts, m.last_error, m.target) for m in failed]
    assert deliver_due(notified.state.sessions, settings).sent == 0  # back-off: not due yet
    later = deliver_due(notified.state.sessions, settings, utc_now() + timedelta(minutes=5))
    assert later.sent == 2
    assert {m.state for m in _outbox(notified)} == {"sent"}
    mails, _port = smtp
    recipients = sorted(r for to, _ in mails.messages for r in to)
    assert recipients.count("admin@tinhuy.example") == 3 and recipients.count("officer_hn@tinhuy.example") == 2
    assert "officer_hcm@tinhuy.example" in recipients and "auditor@tinhuy.example" not in recipients
    subjects = [str(make_header(decode_header(message_from_string(body)["Subject"]))) for _, body in mails.messages]
    assert all(s.startswith("[SOC] Cảnh báo ") and "Nhiều lần đăng nhập thất bại" in s for s in subjects)
    hooks, _ = webhook
    assert len(hooks.bodies) == 3
    for headers, body in hooks.bodies:
        assert verify_signature(HOOK_SECRET.encode(), headers[TIMESTAMP_HEADER.lower()], body,
                                headers[SIGNATURE_HEADER.lower()])  # fmt: skip
        assert json.loads(body)["event"] == "alert"
    assert not verify_signature(
        b"other-secret" * 4, headers[TIMESTAMP_HEADER.lower()], body, headers[SIGNATURE_HEADER.lower()]
    )
    assert SMTP_PASSWORD not in caplog.text and HOOK_SECRET not in caplog.text
    assert run_once(notified.state.sessions, settings).queued == 0  # idempotent: nothing new


def test_assignment_and_deadline_notifications(notified: Api, smtp: tuple[MailSink, int]) -> None:
    settings = settings_of(notified.state)
    run_once(notified.state.sessions, settings)  # alerts; starts the assignment watermark
    body = {"alert_ids": [notified.alert_ids["hn"]], "category": "intrusion", "assignee": "officer_hn"}
    r = notified.client.post("/api/v1/incidents/escalate", headers=notified.headers("admin"), json=body)
    assert r.status_code == 201
    notification_job(notified.state)  # the scheduler's job
    later = deliver_due(notified.state.sessions, settings, utc_now() + timedelta(hours=2))
    assert later.dead == 0
    kinds = {(m.kind, m.target) for m in _outbox(notified)}
    assert ("assignment", "officer_hn@tinhuy.example") in kinds
    assert ("overdue", "officer_hn@tinhuy.example") in kinds  # detected in 2025: the 5-day notice is late
    assert ("overdue", "central") in kinds
    assert all(m.state == "sent" for m in _outbox(notified))
    texts = [b for _, b in smtp[0].messages]
    assert any("officer_hn" in t and "sự cố" in t for t in texts)


def test_undeliverable_message_goes_dead_after_max_attempts(notified: Api, webhook: tuple[HookSink, int]) -> None:
    webhook[0].fail_first = 10_000
    settings = settings_of(notified.state).model_copy(
        update={"max_attempts": 3, "email": settings_of(notified.state).email.model_copy(update={"host": None})}
    )
    run_once(notified.state.sessions, settings)
    moment = utc_now()
    for _ in range(3):
        moment += timedelta(hours=2)
        deliver_due(notified.state.sessions, settings, moment)
    hooks = [m for m in _outbox(notified) if m.channel == "webhook"]
    assert hooks and all(m.state == "dead" and m.attempts == 3 for m in hooks)
    assert all("503" in (m.last_error or "") for m in hooks)
