"""A minimal reference receiver: what the central monitoring centre runs to accept packages.

``POST /handover/v1/packages`` takes a signed package (or an encrypted envelope of one), checks
the schema and the signature against the registered public key set of the sending site (the key
valid at the package's ``created`` time), stores it and answers ``201`` with a signed receipt.
A package it already holds is answered ``409`` with the *same* receipt, so a retry after a lost
answer is never counted twice. The receipt lists the sequence numbers still missing for the site,
so gaps are visible at once. Clients authenticate with mutual TLS (run it behind uvicorn with
``ssl_cert_reqs=CERT_REQUIRED``); the signature binds each package to its site.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import BigInteger, MetaData, String, UniqueConstraint, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from soc_api.db.session import begin_write, make_engine
from soc_api.db.types import JsonType, UtcDateTime
from soc_api.handover import FORMAT
from soc_api.handover.envelope import EnvelopeError, decrypt, is_envelope
from soc_api.handover.keys import KeyRing, PublicKeySet
from soc_api.handover.package import PackageError, package_digest, validate_package
from soc_api.handover.signing import SignatureError, sign, verify
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
    stats: dict[str, int] = field(default_factory=lambda: {"stored": 0, "duplicates": 0, "rejected": 0})


def missing_sequences(session: Session, site: str) -> list[int]:
    held = sorted(session.scalars(select(ReceivedPackage.sequence).where(ReceivedPackage.site == site)))
    if not held:
        return []
    present = set(held)
    return [n for n in range(1, held[-1] + 1) if n not in present]


def _problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "urn:soc:handover:" + str(status), "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def create_receiver_app(config: ReceiverConfig) -> FastAPI:
    engine = make_engine(config.db_url)
    ReceiverBase.metadata.create_all(engine)
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

    @app.post("/handover/v1/packages")
    async def receive(request: Request) -> JSONResponse:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            config.stats["rejected"] += 1
            return _problem(413, f"package above {MAX_BODY} bytes")
        try:
            document = _open(raw)
            validate_package(document)
            site = str(document["site"])
            keys = config.site_keys.get(site)
            if keys is None:
                config.stats["rejected"] += 1
                return _problem(403, f"site {site!r} is not registered")
            verify(document, keys, "created")
        except (ValueError, EnvelopeError, PackageError, SignatureError) as exc:
            config.stats["rejected"] += 1
            return _problem(422, str(exc))
        digest = package_digest(document)
        with sessions() as session, session.begin():
            begin_write(session)
            held = session.get(ReceivedPackage, document["package_id"])
            if held is not None:
                if held.sha256 != digest:
                    config.stats["rejected"] += 1
                    return _problem(409, "a different package with this id was already received")
                config.stats["duplicates"] += 1
                return JSONResponse({"receipt": held.receipt}, status_code=409)
            taken = session.scalar(
                select(ReceivedPackage.package_id).where(
                    ReceivedPackage.site == site, ReceivedPackage.sequence == document["sequence"]
                )
            )
            if taken is not None:
                config.stats["rejected"] += 1
                return _problem(409, f"sequence {document['sequence']} of {site} is another package ({taken})")
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

    @app.get("/handover/v1/keys")
    def public_keys() -> dict[str, Any]:
        return ring.public_set().to_json()

    return app
