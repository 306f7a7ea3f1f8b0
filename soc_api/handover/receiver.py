"""A minimal reference receiver: what the central monitoring centre runs to accept packages.

``POST /handover/v1/packages`` takes a signed package (or an encrypted envelope of one), checks
the schema and the signature against the registered public key set of the sending site (the key
valid at the package's ``created`` time), stores it and answers ``201`` with a signed receipt.
A package it already holds is answered ``409`` with the *same* receipt, so a retry after a lost
answer is never counted twice. The receipt lists the sequence numbers still missing for the site,
so gaps are visible at once. Clients authenticate with mutual TLS (``soc central serve`` runs it
with ``ssl_cert_reqs=CERT_REQUIRED``); the signature binds each package to its site and, when a
site's certificate fingerprint is registered, the TLS client certificate must be that one (the
server puts it in ``scope["extensions"]["tls"]["client_cert_sha256"]``). Every stored, repeated
or refused package is written to the same hash-chained audit log the SOC API uses
(:mod:`soc_api.services.audit`), in the receiver's own database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import BigInteger, MetaData, String, UniqueConstraint, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from soc_api.db.models import AuditEntry
from soc_api.db.session import begin_write, make_engine
from soc_api.db.types import JsonType, UtcDateTime
from soc_api.handover import FORMAT
from soc_api.handover.envelope import EnvelopeError, decrypt, is_envelope
from soc_api.handover.keys import KeyRing, PublicKeySet
from soc_api.handover.package import PackageError, package_digest, validate_package
from soc_api.handover.signing import SignatureError, sign, verify
from soc_api.services import audit
from soc_common.ecs import iso, utc_now

MAX_BODY = 8 * 1024 * 1024


class ReceiverBase(DeclarativeBase):
    """The centre's own schema: separate from the SOC database on purpose."""

    metadata = MetaData()


class ReceivedPackage(ReceiverBase):
    __tablename__ = "received_packages"
    __table_args__ = (UniqueConstraint("site", "sequence"),)

    package_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    sequence: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JsonType)
    receipt: Mapped[dict[str, Any]] = mapped_column(JsonType)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass
class ReceiverConfig:
    db_url: str
    key_dir: Any  # pathlib.Path of the receiver's own Ed25519 key ring (signs receipts)
    site_keys: dict[str, PublicKeySet]
    name: str = "central"
    encryption_key: X25519PrivateKey | None = None
    site_cert_fingerprints: dict[str, str] = field(default_factory=dict)  # site -> SHA-256 hex of its TLS cert
    stats: dict[str, int] = field(default_factory=lambda: {"stored": 0, "duplicates": 0, "rejected": 0})


def missing_sequences(session: Session, site: str) -> list[int]:
    held = sorted(session.scalars(select(ReceivedPackage.sequence).where(ReceivedPackage.site == site)))
    if not held:
        return []
    present = set(held)
    return [n for n in range(1, held[-1] + 1) if n not in present]


def site_status(session: Session, site: str) -> dict[str, Any]:
    """What the centre holds from one site: last sequence, gaps, last arrival, counts by type."""
    last_seq, last_at = session.execute(
        select(func.max(ReceivedPackage.sequence), func.max(ReceivedPackage.received_at)).where(
            ReceivedPackage.site == site
        )
    ).one()
    by_type = dict(
        session.execute(
            select(ReceivedPackage.type, func.count())
            .where(ReceivedPackage.site == site)
            .group_by(ReceivedPackage.type)
        ).all()
    )
    return {
        "site": site,
        "last_sequence": last_seq or 0,
        "missing": missing_sequences(session, site),
        "last_received": iso(last_at) if last_at is not None else None,
        "counts": {str(k): int(v) for k, v in sorted(by_type.items())},
    }


def client_fingerprint(scope: MutableMapping[str, Any]) -> str | None:
    """SHA-256 of the TLS client certificate, when the server put it in the ASGI scope."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    value = tls.get("client_cert_sha256")
    return value if isinstance(value, str) else None


def normalise_fingerprint(value: str) -> str:
    """``AB:CD:..`` or ``abcd..`` -> lowercase hex; raises ValueError unless it is 32 bytes."""
    hexed = value.replace(":", "").strip().lower()
    if len(hexed) != 64 or any(c not in "0123456789abcdef" for c in hexed):
        raise ValueError("a certificate fingerprint is 64 hex digits (SHA-256)")
    return hexed


def _problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "urn:soc:handover:" + str(status), "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def create_receiver_app(config: ReceiverConfig) -> FastAPI:
    engine = make_engine(config.db_url)
    ReceiverBase.metadata.create_all(engine)
    AuditEntry.__table__.create(engine, checkfirst=True)  # type: ignore[attr-defined]
    sessions = sessionmaker(engine, expire_on_commit=False)
    ring = KeyRing(config.key_dir)
    app = FastAPI(title="SOC hand-over reference receiver", docs_url=None, redoc_url=None)
    app.state.receiver = config

    def _open(raw: bytes) -> dict[str, Any]:
        document = json.loads(raw)
        if is_envelope(document):
            if config.encryption_key is None:
                raise EnvelopeError("this receiver accepts no encrypted packages")
            document = json.loads(decrypt(document, config.encryption_key))
        if not isinstance(document, dict):
            raise PackageError("a package is a JSON object")
        return document

    def _receipt(document: dict[str, Any], digest: str, missing: list[int]) -> dict[str, Any]:
        body = {
            "format": FORMAT,
            "kind": "receipt",
            "receipt_id": str(uuid.uuid4()),
            "receiver": config.name,
            "package_id": document["package_id"],
            "site": document["site"],
            "sequence": document["sequence"],
            "package_sha256": digest,
            "received": iso(utc_now()),
            "missing_sequences": missing,
        }
        return sign(body, ring.current())

    def _refuse(request: Request, status: int, detail: str, document: dict[str, Any] | None = None) -> JSONResponse:
        config.stats["rejected"] += 1
        facts = {"status": status, "detail": detail[:500], "client_cert_sha256": client_fingerprint(request.scope)}
        if document is not None:
            facts.update({k: document.get(k) for k in ("package_id", "site", "sequence", "type")})
        _audit(request, "handover.refused", facts)
        return _problem(status, detail)

    def _audit(request: Request, action: str, facts: dict[str, Any], session: Session | None = None) -> None:
        client = request.client.host if request.client else None
        if session is not None:
            audit.append(session, actor=str(facts.get("site") or "unknown"), action=action,
                         object_type="handover_package", object_id=facts.get("package_id"), after=facts,
                         source_ip=client)  # fmt: skip
            return
        with sessions() as own, own.begin():
            begin_write(own)
            _audit(request, action, facts, own)

    def _cert_mismatch(request: Request, site: str) -> str | None:
        expected = config.site_cert_fingerprints.get(site)
        if expected is None:
            return None
        presented = client_fingerprint(request.scope)
        if presented is None:
            return "this server cannot see the client certificate, and the site has one registered"
        if presented != normalise_fingerprint(expected):
            return f"the client certificate is not the one registered for site {site!r}"
        return None

    @app.post("/handover/v1/packages")
    async def receive(request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _refuse(request, 413, f"package above {MAX_BODY} bytes")
        document: dict[str, Any] | None = None
        try:
            document = _open(raw)
            validate_package(document)
            site = str(document["site"])
            keys = config.site_keys.get(site)
            if keys is None:
                return _refuse(request, 403, f"site {site!r} is not registered", document)
            mismatch = _cert_mismatch(request, site)
            if mismatch is not None:
                return _refuse(request, 403, mismatch, document)
            verify(document, keys, "created")
        except (ValueError, EnvelopeError, PackageError, SignatureError) as exc:
            return _refuse(request, 422, str(exc), document)
        digest = package_digest(document)
        facts = {k: document[k] for k in ("package_id", "site", "sequence", "type")}
        facts.update(sha256=digest, client_cert_sha256=client_fingerprint(request.scope))
        refusal: str | None = None
        with sessions() as session, session.begin():
            begin_write(session)
            held = session.get(ReceivedPackage, document["package_id"])
            taken = session.scalar(
                select(ReceivedPackage.package_id).where(
                    ReceivedPackage.site == site, ReceivedPackage.sequence == document["sequence"]
                )
            )
            if held is not None and held.sha256 == digest:
                config.stats["duplicates"] += 1
                _audit(request, "handover.duplicate", facts, session)
                return JSONResponse({"receipt": held.receipt}, status_code=409)
            if held is not None:
                refusal = "a different package with this id was already received"
            elif taken is not None:
                refusal = f"sequence {document['sequence']} of {site} is another package ({taken})"
            else:
                row = ReceivedPackage(
                    package_id=document["package_id"],
                    site=site,
                    sequence=document["sequence"],
                    type=document["type"],
                    sha256=digest,
                    document=document,
                    receipt={},
                    received_at=utc_now(),
                )
                session.add(row)
                session.flush()
                row.receipt = _receipt(document, digest, missing_sequences(session, site))
                _audit(request, "handover.received", {**facts, "receipt_id": row.receipt["receipt_id"]}, session)
        if refusal is not None:
            return _refuse(request, 409, refusal, document)
        config.stats["stored"] += 1
        return JSONResponse({"receipt": row.receipt}, status_code=201)

    @app.get("/handover/v1/sites/{site}/gaps")
    def gaps(site: str) -> dict[str, Any]:
        with sessions() as session:
            last = session.scalar(
                select(ReceivedPackage.sequence)
                .where(ReceivedPackage.site == site)
                .order_by(ReceivedPackage.sequence.desc())
                .limit(1)
            )
            return {"site": site, "last_sequence": last or 0, "missing": missing_sequences(session, site)}

    @app.get("/handover/v1/sites/{site}/status")
    def one_status(site: str) -> dict[str, Any]:
        with sessions() as session:
            return site_status(session, site)

    @app.get("/handover/v1/status")
    def all_status() -> dict[str, Any]:
        with sessions() as session:
            seen = set(session.scalars(select(ReceivedPackage.site).distinct()))
            sites = sorted(seen | set(config.site_keys))
            return {
                "receiver": config.name,
                "stats": dict(config.stats),
                "sites": [site_status(session, s) for s in sites],
            }

    @app.get("/handover/v1/keys")
    def public_keys() -> dict[str, Any]:
        return ring.public_set().to_json()

    return app
