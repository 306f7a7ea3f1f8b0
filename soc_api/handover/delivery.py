"""Push queued packages to the centre over HTTPS with mutual TLS, exactly once.

Each package is POSTed with its ``package_id`` as ``Idempotency-Key``; the receiver answers
201 (stored) or 409 with the receipt it issued the first time, so a retry after a lost answer is
acknowledged with the same receipt and never counted twice. A receipt is only accepted if its
signature verifies with the receiver's public key set and it names our package id and sha256.
Transient failures (network, 5xx, 408, 429) retry with exponential back-off and jitter; a
refusal (other 4xx) marks the package ``failed`` for an operator to look at.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.session import begin_write
from soc_api.handover import adapters, outbox
from soc_api.handover.b64 import b64d
from soc_api.handover.envelope import encrypt
from soc_api.handover.jcs import canonicalize
from soc_api.handover.keys import KeyRing, PublicKeySet
from soc_api.handover.models import OutboxEntry
from soc_api.handover.package import PackageError, check_schema
from soc_api.handover.records import Period
from soc_api.handover.settings import HandoverSettings
from soc_api.handover.signing import SignatureError, verify
from soc_common.ecs import utc_now

log = logging.getLogger(__name__)
PACKAGES_PATH = "/packages"
TRANSIENT = frozenset({408, 425, 429})


class ReceiptError(Exception):
    """A receipt that is malformed, unsigned, or does not match the package."""


def check_receipt(receipt: Any, keys: PublicKeySet, package_id: str, sha256: str) -> dict[str, Any]:
    try:
        check_schema("receipt", receipt)
        verify(receipt, keys, "received")
    except (PackageError, SignatureError) as exc:
        raise ReceiptError(str(exc)) from None
    if receipt["package_id"] != package_id or receipt["package_sha256"] != sha256:
        raise ReceiptError("receipt is for another package or other content")
    result: dict[str, Any] = receipt
    return result


def backoff(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> timedelta:
    """Exponential back-off with "equal jitter": half fixed, half random, never above ``cap``."""
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    r = (rng or random).random()
    return timedelta(seconds=ceiling / 2 + r * ceiling / 2)


def mtls_client(settings: HandoverSettings) -> httpx.Client:
    """HTTPS client presenting our certificate and trusting only the configured CA."""
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.client_cert is not None and settings.client_key is not None:
        context.load_cert_chain(str(settings.client_cert), str(settings.client_key))
    return httpx.Client(verify=context, timeout=settings.timeout)


@dataclass
class PassResult:
    acknowledged: int = 0
    retrying: int = 0
    failed: int = 0


class Deliverer:
    def __init__(
        self,
        settings: HandoverSettings,
        sessions: sessionmaker[Session],
        receiver_keys: PublicKeySet,
        client: httpx.Client | None = None,
    ) -> None:
        if settings.endpoint is None:
            raise ValueError("handover.endpoint is not configured")
        self.settings = settings
        self.sessions = sessions
        self.receiver_keys = receiver_keys
        self.client = client or mtls_client(settings)
        self.url = str(settings.endpoint).rstrip("/") + PACKAGES_PATH

    def _body(self, document: dict[str, Any]) -> bytes:
        data = canonicalize(document)
        if self.settings.receiver_encryption_key:
            return canonicalize(encrypt(data, b64d(self.settings.receiver_encryption_key)))
        return data

    def _claim(self, package_id: str) -> tuple[dict[str, Any], str] | None:
        """Mark the package ``sent`` (committed) before the request, so a crash is retried later."""
        with self.sessions() as session, session.begin():
            begin_write(session)
            entry = session.get(OutboxEntry, package_id)
            if entry is None or entry.status not in ("queued", "sent"):
                return None
            entry.status = "sent"
            entry.sent_at = utc_now()
            entry.next_attempt_at = utc_now() + timedelta(seconds=self.settings.timeout * 2)
            return entry.document, entry.sha256

    def _outcome(self, package_id: str, apply: Callable[[Session, OutboxEntry], None]) -> None:
        with self.sessions() as session, session.begin():
            begin_write(session)
            entry = session.get(OutboxEntry, package_id)
            if entry is not None:
                apply(session, entry)

    def deliver(self, package_id: str) -> str:
        """One attempt for one package; returns ``acknowledged``, ``retrying`` or ``failed``."""
        claimed = self._claim(package_id)
        if claimed is None:
            return "skipped"
        document, sha256 = claimed
        error: str
        permanent = False
        try:
            response = self.client.post(
                self.url,
                content=self._body(document),
                headers={"Content-Type": "application/json", "Idempotency-Key": package_id},
            )
        except httpx.HTTPError as exc:
            error = f"transport: {type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            receipt = _receipt_of(response)
            if status in (200, 201, 409) and receipt is not None:
                try:
                    checked = check_receipt(receipt, self.receiver_keys, package_id, sha256)
                except ReceiptError as exc:
                    error = f"receipt refused: {exc}"
                else:
                    self._outcome(package_id, lambda s, e: outbox.mark_acknowledged(s, e, checked))
                    return "acknowledged"
            else:
                error = f"HTTP {status}: {response.text[:500]}"
                permanent = 400 <= status < 500 and status not in TRANSIENT
        return self._retry_or_fail(package_id, error, permanent)

    def _retry_or_fail(self, package_id: str, error: str, permanent: bool) -> str:
        verdict = "failed"

        def apply(session: Session, entry: OutboxEntry) -> None:
            nonlocal verdict
            give_up = permanent or entry.attempts + 1 >= self.settings.max_attempts
            delay = (
                None if give_up else backoff(entry.attempts + 1, self.settings.backoff_base, self.settings.backoff_max)
            )
            outbox.mark_failed_attempt(session, entry, error, retry_in=delay)
            verdict = "failed" if give_up else "retrying"

        self._outcome(package_id, apply)
        log.warning("hand-over of %s: %s (%s)", package_id, error, verdict)
        return verdict

    def push_pass(self, now: datetime | None = None, limit: int = 100) -> PassResult:
        """Try every due package once, lowest sequence first."""
        with self.sessions() as session:
            ids = [e.package_id for e in outbox.due(session, now, limit)]
        result = PassResult()
        for package_id in ids:
            verdict = self.deliver(package_id)
            if verdict == "acknowledged":
                result.acknowledged += 1
            elif verdict == "retrying":
                result.retrying += 1
            elif verdict == "failed":
                result.failed += 1
        return result


def _receipt_of(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        return None
    receipt = body.get("receipt") if isinstance(body, dict) else None
    return receipt if isinstance(receipt, dict) else None


# --- periodic and urgent packages -------------------------------------------------------------


def _day_period(day: date) -> Period:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return Period(start=start, end=start + timedelta(days=1))


def _previous_quarter(today: date) -> Period:
    q_start_month = 3 * ((today.month - 1) // 3) + 1
    end = datetime(today.year, q_start_month, 1, tzinfo=UTC)
    prev_month = q_start_month - 3
    start = datetime(
        today.year if prev_month > 0 else today.year - 1,
        prev_month if prev_month > 0 else prev_month + 12,
        1,
        tzinfo=UTC,
    )
    return Period(start=start, end=end)


class HandoverJobs:
    """What the scheduler runs: build periodic packages, report serious incidents, push."""

    def __init__(
        self, settings: HandoverSettings, sessions: sessionmaker[Session], deliverer: Deliverer | None
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.deliverer = deliverer
        self.ring = KeyRing(settings.key_dir)

    def _enqueue(self, package_type: str, record: Any, subject: str, urgent: bool = False) -> bool:
        with self.sessions() as session, session.begin():
            begin_write(session)
            if session.scalar(select(OutboxEntry.package_id).where(OutboxEntry.subject == subject)) is not None:
                return False  # already built (a restarted scheduler must not build twice)
            outbox.enqueue(
                session,
                site=self.settings.site,
                package_type=package_type,
                record=record,
                key=self.ring.current(),
                site_name=self.settings.site_name,
                subject=subject,
                urgent=urgent,
            )
        return True

    def daily_summary(self, today: date | None = None) -> bool:
        day = (today or utc_now().date()) - timedelta(days=1)
        with self.sessions() as session:
            record = adapters.alert_summary(session, _day_period(day))
        return self._enqueue("alert_summary", record, f"alert_summary:{day.isoformat()}")

    def quarterly_kpi(self, today: date | None = None) -> bool:
        period = _previous_quarter(today or utc_now().date())
        with self.sessions() as session:
            record = adapters.kpi_snapshot(session, period)
        return self._enqueue("kpi_snapshot", record, f"kpi_snapshot:{period.start.date().isoformat()}")

    def report_serious_incidents(self) -> int:
        """Initial reports for new incidents of the urgent severities, pushed at once."""
        with self.sessions() as session:
            taken = set(session.scalars(select(OutboxEntry.subject).where(OutboxEntry.type == "incident_report")))
            pending = adapters.unreported_incidents(session, self.settings.urgent_severities, {s for s in taken if s})
            reports = [adapters.incident_report(session, i) for i in pending]
        built = sum(self._enqueue("incident_report", r, f"incident:{r.incident_id}", urgent=True) for r in reports)
        if built:
            self.push()
        return built

    def push(self) -> PassResult | None:
        return self.deliverer.push_pass() if self.deliverer is not None else None


def build_scheduler(jobs: HandoverJobs) -> BackgroundScheduler:
    s = jobs.settings
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        jobs.daily_summary, CronTrigger.from_crontab(s.daily_summary_cron, timezone="UTC"), id="handover-daily-summary"
    )
    scheduler.add_job(
        jobs.quarterly_kpi, CronTrigger.from_crontab(s.quarterly_kpi_cron, timezone="UTC"), id="handover-quarterly-kpi"
    )
    scheduler.add_job(
        jobs.report_serious_incidents, "interval", seconds=60, id="handover-urgent", max_instances=1, coalesce=True
    )
    scheduler.add_job(
        jobs.push, "interval", seconds=s.push_interval, id="handover-push", max_instances=1, coalesce=True
    )
    return scheduler
