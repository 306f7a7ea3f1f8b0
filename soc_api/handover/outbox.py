"""The outbox: every package is built, numbered, signed and stored in the caller's transaction.

The per-site sequence counter row is locked and bumped in the same transaction as the outbox
insert, so numbers are gapless and a package exists exactly when its number does. Delivery
(:mod:`soc_api.handover.delivery`) only ever reads this table; a crash between building and
sending loses nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from soc_api.handover import exporters, stix
from soc_api.handover.keys import SigningKey
from soc_api.handover.models import HandoverReceipt, HandoverSequence, OutboxEntry, StixObjectRow
from soc_api.handover.package import new_package, package_digest
from soc_api.handover.signing import sign
from soc_api.services import audit
from soc_common.ecs import parse_ts, utc_now


def collection_id(site: str) -> str:
    """The TAXII collection of a site's objects (stable across installs)."""
    return str(uuid.uuid5(stix.NAMESPACE, f"collection|{site}"))


def next_sequence(session: Session, site: str) -> int:
    """Take the next number for ``site``; the row lock holds until the caller's commit."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(HandoverSequence).values(site=site, last_sequence=0).on_conflict_do_nothing())
    current = session.scalar(
        select(HandoverSequence.last_sequence).where(HandoverSequence.site == site).with_for_update()
    )
    number = int(current or 0) + 1
    session.execute(update(HandoverSequence).where(HandoverSequence.site == site).values(last_sequence=number))
    return number


def store_stix(session: Session, site: str, objects: list[dict[str, Any]], package_id: str, at: datetime) -> int:
    """Add the objects (versions not yet held) to the site's TAXII collection; returns how many."""
    collection = collection_id(site)
    added = 0
    for obj in objects:
        modified = str(obj.get("modified", obj.get("created", "")))
        exists = session.scalar(
            select(StixObjectRow.id).where(
                StixObjectRow.collection == collection,
                StixObjectRow.stix_id == obj["id"],
                StixObjectRow.modified == modified,
            )
        )
        if exists is None:
            session.add(
                StixObjectRow(
                    collection=collection,
                    stix_id=obj["id"],
                    stix_type=obj["type"],
                    modified=modified,
                    date_added=at,
                    object=obj,
                    package_id=package_id,
                )
            )
            added += 1
    session.flush()
    return added


def enqueue(
    session: Session,
    *,
    site: str,
    package_type: str,
    record: BaseModel,
    key: SigningKey,
    site_name: str = "",
    subject: str | None = None,
    urgent: bool = False,
    actor: str = "system",
    now: datetime | None = None,
) -> OutboxEntry:
    """Build, number, sign and queue one package (and publish its STIX objects to TAXII)."""
    at = now or utc_now()
    sequence = next_sequence(session, site)
    document = sign(new_package(package_type, record, site=site, sequence=sequence, created=at), key)
    entry = OutboxEntry(
        package_id=document["package_id"],
        site=site,
        sequence=sequence,
        type=package_type,
        subject=subject,
        urgent=urgent,
        document=document,
        sha256=package_digest(document),
        created_at=at,
        status="queued",
        attempts=0,
        next_attempt_at=at,
    )
    session.add(entry)
    session.flush()
    exporter = exporters.StixExporter({site: site_name} if site_name else None)
    if exporter.supports(package_type):
        store_stix(session, site, exporter.objects(document), entry.package_id, at)
    audit.append(
        session,
        actor=actor,
        action="handover.package_built",
        object_type="handover_package",
        object_id=entry.package_id,
        after={"type": package_type, "site": site, "sequence": sequence, "sha256": entry.sha256, "subject": subject},
    )
    return entry


def due(session: Session, now: datetime | None = None, limit: int = 100) -> list[OutboxEntry]:
    """Queued packages whose next attempt is due, oldest number first (the receiver sees order)."""
    at = now or utc_now()
    stmt = (
        select(OutboxEntry)
        # "sent" and due again = an attempt that never finished (crash, lost answer): retry it.
        .where(OutboxEntry.status.in_(("queued", "sent")), OutboxEntry.next_attempt_at <= at)
        .order_by(OutboxEntry.site, OutboxEntry.sequence)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def mark_acknowledged(session: Session, entry: OutboxEntry, receipt: dict[str, Any], actor: str = "system") -> None:
    now = utc_now()
    entry.status = "acknowledged"
    entry.attempts += 1
    entry.sent_at = entry.sent_at or now
    entry.acknowledged_at = now
    entry.next_attempt_at = None
    entry.last_error = None
    if session.get(HandoverReceipt, entry.package_id) is None:
        session.add(
            HandoverReceipt(
                package_id=entry.package_id,
                receipt_id=str(receipt["receipt_id"]),
                receipt=receipt,
                received_at=parse_ts(receipt["received"]),
            )
        )
    audit.append(
        session,
        actor=actor,
        action="handover.package_acknowledged",
        object_type="handover_package",
        object_id=entry.package_id,
        after={"sequence": entry.sequence, "receipt_id": receipt["receipt_id"], "attempts": entry.attempts},
    )


def mark_failed_attempt(
    session: Session,
    entry: OutboxEntry,
    error: str,
    *,
    retry_in: timedelta | None,
    actor: str = "system",
) -> None:
    """Count the attempt; ``retry_in=None`` gives up (status ``failed``, audited)."""
    entry.attempts += 1
    entry.last_error = error[:2000]
    if retry_in is None:
        entry.status = "failed"
        entry.next_attempt_at = None
        audit.append(
            session,
            actor=actor,
            action="handover.package_failed",
            object_type="handover_package",
            object_id=entry.package_id,
            after={"sequence": entry.sequence, "attempts": entry.attempts, "error": entry.last_error},
        )
    else:
        entry.status = "queued"
        entry.next_attempt_at = utc_now() + retry_in


def requeue(session: Session, package_id: str, actor: str) -> OutboxEntry | None:
    entry = session.get(OutboxEntry, package_id)
    if entry is None or entry.status != "failed":
        return None
    entry.status = "queued"
    entry.next_attempt_at = utc_now()
    audit.append(
        session, actor=actor, action="handover.package_requeued", object_type="handover_package", object_id=package_id
    )
    return entry
