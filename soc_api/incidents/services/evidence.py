"""Evidence files: stored once per SHA-256 under ``<data_dir>/incidents/evidence`` (write to a
temporary name, fsync, rename), recorded with size and hash, and re-hashed on every download so a
file altered on disk is reported instead of served."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import Incident
from soc_api.incidents.models import IncidentEvidence
from soc_api.incidents.services.context import IncidentCtx, IncidentError, record
from soc_api.services.blobs import blob_path, store_blob

_SAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)
_MEDIA = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


def read_verified(root: Path, sha256: str) -> bytes:
    try:
        data = blob_path(root, sha256).read_bytes()
    except OSError:
        raise IncidentError("the stored file is missing", status=500, kind="integrity") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise IncidentError("the stored file no longer matches its SHA-256", status=500, kind="integrity")
    return data


def evidence_root(ctx: IncidentCtx) -> Path:
    return ctx.data_dir / "incidents" / "evidence"


def media_type(content_type: str) -> str:
    media = content_type.split(";", 1)[0].strip().lower() or "application/octet-stream"
    if not _MEDIA.match(media):
        raise IncidentError(f"not a media type: {media[:80]!r}", status=415, kind="unsupported-media-type")
    return media


def add_evidence(
    session: Session, ctx: IncidentCtx, incident: Incident, filename: str, content_type: str, description: str,
    data: bytes,
) -> IncidentEvidence:  # fmt: skip
    if not data:
        raise IncidentError("empty file", status=422, kind="validation-error")
    if len(data) > ctx.settings.max_evidence_bytes:
        raise IncidentError(f"evidence above {ctx.settings.max_evidence_bytes} bytes", status=413, kind="too-large")
    media = media_type(content_type)
    safe = _SAFE_NAME.sub("_", Path(filename).name)[:200] or "evidence"
    digest = store_blob(evidence_root(ctx), data)
    row = IncidentEvidence(
        incident_id=incident.id, filename=safe, content_type=media, size=len(data), sha256=digest,
        description=description, uploaded_by=ctx.actor, uploaded_at=ctx.now,
    )  # fmt: skip
    session.add(row)
    session.flush()
    after = {"evidence_id": row.id, "filename": safe, "sha256": digest, "size": len(data), "content_type": media}
    record(session, ctx, incident, "evidence_add", f"Chứng cứ: {safe} (SHA-256 {digest})", after=after)
    return row


def evidence_of(session: Session, incident_id: int) -> list[IncidentEvidence]:
    q = select(IncidentEvidence).where(IncidentEvidence.incident_id == incident_id)
    return list(session.scalars(q.order_by(IncidentEvidence.id)))
