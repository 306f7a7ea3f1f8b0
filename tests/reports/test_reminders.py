"""Reminders fire at the configured working-day offsets (across Tết), once per threshold, land as
in-app notifications for the right people, and go out as real e-mail to a loopback SMTP server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from soc_api.reminders.models import Notification
from soc_api.reminders.services.run import run_reminders
from soc_api.reminders.settings import RemindersSettings, SmtpSettings
from soc_api.systems.calendar.holidays import VN_TZ, calendar_from
from soc_api.systems.models import Dossier, InformationSystem, Organisation
from soc_api.systems.settings import SystemsSettings
from tests.helpers.api_world import Api

SUBMITTED = date(2027, 1, 25)  # Monday; 15 working days cross Tết Đinh Mùi (06/02/2027)
DUE = date(2027, 2, 22)  # by hand: 26-29/1, 1-4/2, (5-11/2 Tết + compensation), 12, 15-19, 22/2


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _seed_dossier(api: Api) -> int:
    with api.state.sessions.begin() as s:
        ids = []
        for code, kind in (("tu", "agency"), ("cntt", "dedicated_unit")):
            org = Organisation(code=code, name=code, kind=kind, site="hn", contact={})
            s.add(org)
            s.flush()
            ids.append(org.id)
        s.add(
            InformationSystem(
                id="qlvb",
                name="Quản lý văn bản",
                site="hn",
                owner_org_id=ids[0],
                operator_org_id=ids[0],
                security_unit_org_id=ids[1],
                facts={},
                network_zones=[],
                cidrs=[],
                components=[],
                proposed_level=3,
            )
        )
        s.flush()
        submitted = datetime.combine(SUBMITTED, time(9), tzinfo=VN_TZ).astimezone(UTC)
        dossier = Dossier(
            system_id="qlvb",
            profile="current",
            proposed_level=3,
            status="submitted",
            submitted_at=submitted,
            created_by="officer_hn",
        )
        s.add(dossier)
        s.flush()
        return dossier.id


def _run(api: Api, day: date, smtp: SmtpSettings | None = None) -> Any:
    settings = RemindersSettings(smtp=smtp or SmtpSettings())
    now = datetime.combine(day, time(7), tzinfo=VN_TZ).astimezone(UTC)
    return run_reminders(api.state.sessions, settings, SystemsSettings(), Path(api.state.config.data_dir), day, now)


def _dossier_keys(api: Api, user: str) -> list[str]:
    with api.state.sessions() as s:
        q = select(Notification.dedup_key).where(
            Notification.user_id == api.user_ids[user], Notification.kind == "dossier"
        )
        return sorted(s.scalars(q))


def test_deadline_counts_working_days_across_tet() -> None:
    assert calendar_from(None).add_working_days(SUBMITTED, 15) == DUE


def test_dossier_reminders_fire_at_working_day_offsets(api: Api) -> None:
    dossier_id = _seed_dossier(api)
    expected: list[str] = []
    for day, new in (
        (date(2027, 2, 16), None),  # 4 working days left
        (date(2027, 2, 17), "d3"),
        (date(2027, 2, 17), None),  # same day again: no duplicate
        (date(2027, 2, 18), None),  # 2 left: the d3 reminder already covers it
        (date(2027, 2, 19), "d1"),
        (date(2027, 2, 22), "d0"),
        (date(2027, 2, 23), "overdue"),
    ):
        _run(api, day)
        if new is not None:
            expected.append(f"dossier:{dossier_id}:submitted:{new}")
        assert _dossier_keys(api, "approver_hn") == sorted(expected), day
    assert _dossier_keys(api, "officer_hn") == sorted(expected)
    assert _dossier_keys(api, "admin") == sorted(expected)
    assert _dossier_keys(api, "officer_hcm") == []  # other site
    assert _dossier_keys(api, "auditor") == []  # not an actor on dossiers


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # DB-agnostic: PostgreSQL is covered above
def test_missed_days_send_only_the_tightest_threshold(api: Api) -> None:
    dossier_id = _seed_dossier(api)
    _run(api, date(2027, 2, 19))  # first run with 1 working day left
    assert _dossier_keys(api, "approver_hn") == [f"dossier:{dossier_id}:submitted:d1"]


def test_reminders_are_emailed_and_readable(api: Api, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    _seed_dossier(api)
    result = _run(api, date(2027, 2, 17), SmtpSettings(host="127.0.0.1", port=port, security="none"))
    assert result.created > 0 and result.email_errors == 0
    assert result.emailed == 2  # officer_hn and approver_hn have addresses; admin has none
    to = sorted(str(m["To"]) for m in inbox.messages)
    assert to == ["approver.hn@tinhuy.example", "officer.hn@tinhuy.example"]
    body = inbox.messages[0].get_payload(decode=True)
    assert isinstance(body, bytes)
    assert "Thẩm định hồ sơ cấp độ Quản lý văn bản: hạn ngày 22/02/2027" in body.decode("utf-8")
    again = _run(api, date(2027, 2, 17), SmtpSettings(host="127.0.0.1", port=port, security="none"))
    assert (again.created, again.emailed) == (0, 0)  # nothing new, nothing re-sent
    r = api.client.get("/api/v1/notifications", params={"unread": True}, headers=api.headers("officer_hn"))
    assert r.status_code == 200
    mine = [n for n in r.json() if n["kind"] == "dossier"]
    assert len(mine) == 1 and mine[0]["emailed"] is True
    r = api.client.post(f"/api/v1/notifications/{mine[0]['id']}/read", headers=api.headers("officer_hn"))
    assert r.status_code == 200 and r.json()["read_at"] is not None
    other = api.client.post(f"/api/v1/notifications/{mine[0]['id']}/read", headers=api.headers("approver_hn"))
    assert other.status_code == 404


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # DB-agnostic: PostgreSQL is covered above
def test_unreachable_smtp_keeps_notifications_for_retry(api: Api) -> None:
    _seed_dossier(api)
    result = _run(api, date(2027, 2, 17), SmtpSettings(host="127.0.0.1", port=_free_port(), security="none"))
    assert result.created > 0 and result.emailed == 0 and result.email_errors == 2
    with api.state.sessions() as s:
        assert s.scalar(select(Notification.id).where(Notification.emailed_at.is_not(None))) is None
